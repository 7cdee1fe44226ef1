"""report.html (avse_bench/report/html.py) and its listening material (avse_bench/report/listen.py), on a smoke compare
run with visual stress and a blind eval split: the page parses, every file it names exists and decodes, nothing is
fetched from elsewhere, the players are the ones configured, and a blind card has no target."""

from __future__ import annotations

import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import cv2
import pandas as pd
import pytest
import soundfile as sf

from avse_bench.cli import main
from avse_bench.compare import embedded_corpus
from avse_bench.profiles import get_profile
from avse_bench.report.listen import select_scenes

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
STRESS = ["occlusion=0.5", "offset=2"]


class Page(HTMLParser):
    """Every tag with its attributes, and whether the non-void tags close in order."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.stack, self.errors = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):  # <img ... /> (Python-Markdown writes void tags so)
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.errors.append(f"<{tag} /> is not a void element")

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1] if self.stack else 'nothing'}")
        else:
            self.stack.pop()


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text())
    page.close()
    assert not page.errors and not page.stack, (page.errors[:3], page.stack)
    return page


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """compare dcnn_rnn --profile smoke --stress occlusion=0.5 offset=2 on the smoke corpus plus an eval split
    without targets (a copy of dev)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("AVSE_BENCH_CACHE", str(tmp_path_factory.mktemp("cache")))
    root = tmp_path_factory.mktemp("data") / "root"
    shutil.copytree(embedded_corpus(get_profile("smoke")["corpus"], 0), root)
    shutil.copytree(root / "dev" / "scenes", root / "eval" / "scenes")
    for target in [*(root / "eval" / "scenes").glob("*_target.wav"),  # as the challenge's eval split
                   *(root / "eval" / "scenes").glob("*_interferer.wav")]:
        target.unlink()
    shutil.copy(root / "metadata" / "scenes.dev.json", root / "metadata" / "scenes.eval.json")
    out = tmp_path_factory.mktemp("run") / "run"
    assert main(["compare", "dcnn_rnn", "--profile", "smoke", "--device", "cpu", "--data", str(root), "--out",
                 str(out), "--workers", "0", "--stress", *STRESS]) == 0
    yield out
    mp.undo()


@pytest.mark.slow
def test_the_page_parses_and_everything_it_names_is_here_and_decodes(run):
    page = parse(run / "report.html")
    tags = {t for t, _ in page.tags}
    assert "script" not in tags and "link" not in tags and "iframe" not in tags  # nothing runs, nothing is fetched
    referenced = [a[k] for _, a in page.tags for k in ("src", "href") if k in a]
    assert not [r for r in referenced if r.lower().startswith(("http:", "https:", "//"))]
    assert "url(" not in (run / "report.html").read_text()  # no CSS resource of any kind
    files = [r for r in referenced if not r.startswith("#")]
    assert len(files) > 20
    for ref in files:
        path = run / ref
        assert path.is_file(), ref
        if path.suffix in (".mp3", ".wav"):
            audio, rate = sf.read(path)
            assert rate == 16_000 and len(audio) > 8_000, ref  # the smoke corpus: scenes of 1-1.5 s
        else:
            assert cv2.imread(str(path)) is not None, ref
    for name in ("sheet.md", "quality.png"):  # the Markdown report and its plots are still there, and on the page
        assert (run / name).is_file()
    assert "quality.png" in referenced and any(r.startswith("stress_") for r in referenced)


@pytest.mark.slow
def test_cards_and_players_are_as_configured(run):
    cards = json.loads((run / "listen" / "cards.json").read_text())["cards"]
    scores = pd.read_csv(run / "scores.csv", dtype={"scene": str, "masker": str, "error": str})
    blind_scores = pd.read_csv(run / "blind.csv", dtype={"scene": str, "masker": str, "error": str})
    dev = [c for c in cards if c["split"] == "dev"]
    blind = [c for c in cards if c["split"] == "eval"]
    assert [c["scene"] for c in dev] == [s for s, _ in select_scenes(scores, ["dcnn_rnn"], "si_sdr")]
    assert [c["scene"] for c in blind] == [s for s, _ in select_scenes(blind_scores, ["dcnn_rnn"], "dnsmos_ovrl")]
    assert 3 <= len(dev) <= 5 and blind  # best, median, worst (4 scenes: distinct), and masker types not yet shown
    page = parse(run / "report.html")
    audio = [a["src"] for t, a in page.tags if t == "audio"]
    per_dev = 2 + 2 + len(STRESS)  # mixture, target; audio-visual, blank video, each stress condition
    per_blind = 1 + 1  # mixture; audio-visual
    assert len(audio) == per_dev * len(dev) + per_blind * len(blind)
    for card in dev:
        labels = [p["label"] for p in card["players"]]
        assert len(labels) == per_dev and labels[1].startswith("target")
        assert len(card["strips"]) == 1 + len(STRESS)  # clean, then each condition's frames
    for card in blind:
        assert [p["label"] for p in card["players"]] == ["mixture", "dcnn_rnn, audio-visual"]  # no target
        assert set(card["metrics"]) <= {"dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808"}
    html = (run / "report.html").read_text()
    assert "How each item was measured (click to open)" in html and "<details>" in html


@pytest.mark.slow
def test_scenes_by_id_and_a_clear_error_for_an_unknown_one(run, capsys):
    scene = json.loads((run / "listen" / "cards.json").read_text())["cards"][0]["scene"]
    sheet = (run / "sheet.md").read_bytes()
    assert main(["report", str(run), "--listen", scene]) == 0
    cards = json.loads((run / "listen" / "cards.json").read_text())["cards"]
    assert [c["scene"] for c in cards if c["split"] == "dev"] == [scene]
    assert (run / "sheet.md").read_bytes() == sheet  # the Markdown report does not change
    assert main(["report", str(run), "--listen", "NOPE"]) == 2
    err = capsys.readouterr().err
    assert "scene NOPE not in the dev split" in err and "Traceback" not in err
    assert [c["scene"] for c in json.loads((run / "listen" / "cards.json").read_text())["cards"]][0] == scene
    assert main(["report", str(run), "--listen"]) == 0  # the default choice again


COMMITTED = Path(__file__).resolve().parent.parent / "reports" / "quick-cpu"
LISTEN_MIB, REPORT_MIB = 4.0, 6.0  # what the README and the report's README promise for the committed quick report


def test_the_committed_quick_report_page_is_whole_and_within_its_size():
    """The page committed with the quick report: it parses, every file it names is committed beside it, and its
    listening material and the whole folder stay under the sizes stated (reports/quick-cpu/README.md)."""
    page = parse(COMMITTED / "report.html")
    files = [a[k] for _, a in page.tags for k in ("src", "href") if k in a and not a[k].startswith("#")]
    assert len([t for t, _ in page.tags if t == "audio"]) >= 12
    assert all((COMMITTED / f).is_file() for f in files)
    mib = sum(p.stat().st_size for p in (COMMITTED / "listen").rglob("*") if p.is_file()) / 2**20
    total = sum(p.stat().st_size for p in COMMITTED.rglob("*") if p.is_file()) / 2**20
    assert mib <= LISTEN_MIB and total <= REPORT_MIB, (mib, total)


def test_listening_material_without_the_data_is_one_line(tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(COMMITTED, run)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["data"]["root"] = str(tmp_path / "gone")
    (run / "manifest.json").write_text(json.dumps(manifest))
    assert main(["report", str(run), "--listen"]) == 2
    err = capsys.readouterr().err
    assert "is gone" in err and "Traceback" not in err
    assert (run / "listen" / "cards.json").read_bytes() == (COMMITTED / "listen" / "cards.json").read_bytes()
    assert main(["report", str(run)]) == 0  # without --listen the page is made from the material kept
    assert "<audio" in (run / "report.html").read_text()


def test_without_mp3_the_copies_are_16_bit_wavs(run, monkeypatch):
    """A libsndfile that cannot write MP3 (older system builds): the cards still build, with WAV copies."""
    import soundfile

    monkeypatch.setattr(soundfile, "available_formats", lambda: {"WAV": "WAV (Microsoft)"})
    from avse_bench.report.listen import build_listening

    cards = json.loads(build_listening(run).read_text())
    players = [p for c in cards["cards"] for p in c["players"]]
    assert cards["audio"].startswith("WAV") and all(p["audio"].endswith(".wav") for p in players)
    assert all(sf.info(run / p["audio"]).subtype == "PCM_16" for p in players)
    monkeypatch.undo()
    assert all(p["audio"].endswith(".mp3") for c in json.loads(build_listening(run).read_text())["cards"]
               for p in c["players"])


XSS = "<script>document.body.setAttribute('data-xss','fired')</script>"
IMG = "<img src=x onerror=\"document.body.setAttribute('data-xss','img')\">"
LINK = "[click](javascript:document.body.setAttribute('data-xss','link'))"


def run_with_markup(run: Path, out: Path) -> Path:
    """A copy of `run` whose data and system.toml carry markup: the metadata's masker type (the "By masker type"
    table and the cards) and, in the manifest's copy of system.toml, the title, the [model] and [sheet_mapping]."""
    shutil.copytree(run, out)
    for name in ("scores.csv", "stress.csv", "blind.csv"):
        df = pd.read_csv(out / name, dtype={"scene": str, "masker": str, "error": str})
        df.loc[df["masker"].notna(), "masker"] = XSS
        df.to_csv(out / name, index=False)
    manifest = json.loads((out / "manifest.json").read_text())
    config = manifest["systems"]["dcnn_rnn"]["config"]
    config["system"]["title"] = f"DCNN {IMG}"
    config["sheet_mapping"] = {"params": f"{XSS} {LINK}"}
    (out / "manifest.json").write_text(json.dumps(manifest))
    cards = json.loads((out / "listen" / "cards.json").read_text())
    for card in cards["cards"]:
        card["masker"] = XSS
    (out / "listen" / "cards.json").write_text(json.dumps(cards))
    return out


@pytest.mark.slow
def test_markup_from_data_and_system_toml_shows_as_text_and_never_runs(run, tmp_path):
    """Issue 26, item 1: a metadata interferer.type of <script>...</script> reached report.html unescaped through
    Python-Markdown (raw HTML passes). One more of the kind: an <img onerror> in a system.toml title and a
    javascript: link in its [sheet_mapping]. The page's CSP allows no script either."""
    out = run_with_markup(run, tmp_path / "run")
    assert main(["report", str(out)]) == 0
    text = (out / "report.html").read_text()
    page = parse(out / "report.html")
    assert not [t for t, _ in page.tags if t in ("script", "iframe", "object", "embed")]
    assert not [(t, k) for t, a in page.tags for k in a if k.startswith("on")]  # no event handler attribute
    assert not [a for _, a in page.tags for k in ("href", "src") if (a.get(k) or "").lower().startswith(
        "javascript:")]
    assert "&lt;script&gt;document.body.setAttribute" in text  # shown as text in the masker tables
    assert "DCNN &lt;img src=x onerror=" in text
    csp = [a["content"] for t, a in page.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert csp and "script-src 'none'" in csp[0]
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser:  # where a real browser is installed: load the page and read the DOM it ended with
        import subprocess

        dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
                              (out / "report.html").as_uri()], capture_output=True, text=True, timeout=120).stdout
        assert "<body" in dom and "data-xss" not in dom.split("<body", 1)[1].split(">", 1)[0]
