"""`report.html`: one page per compare run that a browser opens from disk (file://), with no server and nothing
fetched from elsewhere (no script, no font, no stylesheet but its own).

No text of the page runs: sheet.md holds text from data and third parties (metadata fields such as a masker type,
a system.toml's title, description and sheet values, file names), so it is rendered with Python-Markdown's raw-HTML
handling removed (any markup shows as text, `md_to_html`) and links kept only with safe schemes (`SafeLinks`); the
listening cards escape every field; and the page carries a Content-Security-Policy that allows no script at all
(`CSP`), so that even markup that got through could not run.

It holds what sheet.md holds, rendered with Python-Markdown (its `tables` extension), with the long "how each item
was measured" notes and any table cell over `FOLD_CHARS` characters folded into `<details>`, every table scrollable
sideways, and before it the listening section: one card per chosen scene (avse_bench/report/listen.py: the scene's
facts and scores, a player and a spectrogram for the mixture, the target and every system output, and strips of the
frames the systems saw). A run without listening material (RUN/listen/cards.json) says so where the cards would be.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import markdown
from markdown.extensions import Extension
from markdown.treeprocessors import Treeprocessor

from avse_bench.metrics.spec import SPECS
from avse_bench.report.listen import CARDS, LISTEN

FOLD_CHARS = 240
BINAURAL_NOTE = " (2 channels; spectrogram: left ear above right)"
HOW_MEASURED = "### How each item was measured"
# No script, no plug-in, no frame, nothing fetched from elsewhere: the page's own style, and images and media from
# its folder (file://) or inline data. A browser then runs no script even if markup reached the page.
CSP = ("default-src 'none'; script-src 'none'; object-src 'none'; frame-src 'none'; base-uri 'none'; "
       "form-action 'none'; style-src 'unsafe-inline'; img-src 'self' file: data:; media-src 'self' file:")
SAFE_SCHEMES = ("http:", "https:", "mailto:")

STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1400px;
       padding: 0 16px 48px; color: #1d1d1f; }
h1 { font-size: 22px; margin-top: 20px; } h2 { font-size: 18px; border-bottom: 1px solid #ccc; margin-top: 32px; }
h3 { font-size: 15px; margin-top: 22px; }
nav { position: sticky; top: 0; background: #fff; padding: 6px 0; border-bottom: 1px solid #ddd; z-index: 1; }
nav a { margin-right: 14px; }
.scroll { overflow-x: auto; margin: 8px 0; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 6px; vertical-align: top; text-align: left; }
th { background: #f3f3f3; }
details > summary { cursor: pointer; color: #0645ad; }
img { max-width: 100%; }
.card { border: 1px solid #bbb; border-radius: 6px; padding: 8px 14px; margin: 16px 0; }
.card h3 { margin-top: 6px; }
.why { color: #555; }
.players td { vertical-align: middle; }
.players img { height: 72px; width: 420px; object-fit: fill; display: block; }
.players img.binaural { height: 130px; }
.strip img { height: 56px; max-width: none; image-rendering: pixelated; }
.strip figure { margin: 4px 0; }
.strip figcaption { font-size: 12px; color: #555; }
audio { width: 260px; }
"""


class SafeLinks(Treeprocessor):
    """Drops an `href` or `src` whose scheme is not http(s) or mailto (`javascript:`, `data:`, `vbscript:` from a
    `[text](url)` in data): a relative link or a fragment stays."""

    def run(self, root):
        for element in root.iter():
            for attr in ("href", "src"):
                url = element.get(attr)
                if url is not None and re.match(r"^\s*[a-zA-Z][a-zA-Z0-9+.-]*:", url) and \
                        not url.strip().lower().startswith(SAFE_SCHEMES):
                    del element.attrib[attr]


class NoRawHtml(Extension):
    """Python-Markdown without raw HTML (its `html_block` preprocessor and `html` inline pattern): `<script>` in
    the text becomes `&lt;script&gt;`, shown as written. Python-Markdown 3 has no safe mode; this is its documented
    replacement (release notes of 3.0)."""

    def extendMarkdown(self, md):
        md.preprocessors.deregister("html_block")
        md.inlinePatterns.deregister("html")
        md.treeprocessors.register(SafeLinks(md), "safe_links", 0)


def md_to_html(text: str, extensions: tuple[str, ...] = ("tables",)) -> str:
    """Markdown `text` as HTML in which no markup of the text itself survives (`NoRawHtml`)."""
    return markdown.markdown(text, extensions=[*extensions, NoRawHtml()])


def _fold_cells(body: str) -> str:
    """Table cells whose text is longer than FOLD_CHARS folded into a <details> (the first words as its summary)."""
    def fold(match: re.Match) -> str:
        tag, cell = match.group(1), match.group(2)
        text = re.sub(r"<[^>]+>", "", cell)
        if len(text) <= FOLD_CHARS:
            return match.group(0)
        return f"<{tag}><details><summary>{html.escape(html.unescape(text)[:120])}...</summary>{cell}</details></td>"
    return re.sub(r"<(td[^>]*)>(.*?)</td>", fold, body, flags=re.S)


def sheet_html(sheet_md: str) -> str:
    """sheet.md as HTML: the measurement notes folded, long cells folded, tables wrapped to scroll sideways."""
    lines = sheet_md.splitlines()
    if HOW_MEASURED in lines:  # the notes run to the next heading of level 2 or 3
        start = lines.index(HOW_MEASURED)
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith(("## ", "### "))), len(lines))
        notes = md_to_html("\n".join(lines[start + 1:end])).replace("\n", " ")
        lines[start:end] = ["", f"<details><summary>How each item was measured (click to open)</summary>{notes}"
                            "</details>", ""]
    body = md_to_html("\n".join(lines[1:]), ("tables", "toc"))  # line 0: the title
    body = _fold_cells(body)
    return body.replace("<table>", '<div class="scroll"><table>').replace("</table>", "</table></div>")


def _scores_table(card: dict) -> str:
    metrics = card["metrics"]
    head = "".join(f"<th>{html.escape(SPECS[m].label)}</th>" for m in metrics)
    body = "".join("<tr><td>" + html.escape(r["system"]) + "</td><td>" + html.escape(r["condition"]) + "</td>"
                   + "".join(f"<td>{html.escape(r[m])}</td>" for m in metrics) + "</tr>" for r in card["scores"])
    return (f'<div class="scroll"><table><tr><th>system</th><th>condition</th>{head}</tr>{body}</table></div>')


def _card_html(card: dict) -> str:
    snr = "n/a" if card["snr_db"] is None else f"{card['snr_db']:.1f} dB"
    players = "".join(
        f"<tr><th>{html.escape(p['label'])}{BINAURAL_NOTE if p['channels'] == 2 else ''}</th>"
        f'<td><audio controls preload="none" src="{html.escape(p["audio"])}"></audio></td>'
        f'<td><img loading="lazy" alt="spectrogram: {html.escape(p["label"])}" src="{html.escape(p["spectrogram"])}"'
        f'{" class=binaural" if p["channels"] == 2 else ""}>'
        "</td></tr>" for p in card["players"])
    strips = "".join(f'<figure><img loading="lazy" alt="{html.escape(s["label"])}" src="{html.escape(s["image"])}">'
                     f"<figcaption>{html.escape(s['label'])}</figcaption></figure>" for s in card["strips"])
    return (f'<section class="card" id="scene-{html.escape(card["split"])}-{html.escape(card["scene"])}">'
            f"<h3>{html.escape(card['scene'])} ({html.escape(card['split'])} split)</h3>"
            f'<p class="why">{html.escape(card["why"])}</p>'
            f"<p>masker: {html.escape(card['masker'] or 'n/a')}; SNR: {snr}</p>"
            f"{_scores_table(card)}<div class=\"strip\">{strips}</div>"
            f'<table class="players">{players}</table></section>')


def listening_html(run_dir: Path) -> str:
    """The listening section from RUN/listen/cards.json, or a paragraph saying why there is none."""
    path = run_dir / LISTEN / CARDS
    if not path.is_file():
        return ('<h2 id="listen">Listen</h2><p>No listening material in this run folder (listen/cards.json): '
                "`avse-bench report RUN --listen` makes it where the run's data and enhanced files are.</p>")
    cards = json.loads(path.read_text())
    intro = (f"<p>One card per chosen scene: what the mixture, the target and each system's outputs sound like "
             f"({html.escape(cards['audio'])}), their spectrograms ({html.escape(cards['spectrogram'])}; colour "
             f'scale: <img alt="colour scale" src="{html.escape(cards["colour_scale"])}" '
             f'style="height:10px;width:160px;vertical-align:middle"> from {cards["db_range"][0]:g} dB, black, to '
             f"{cards['db_range'][1]:g} dB) and the face frames the systems saw. Scores are this scene's; "
             f"a blind split's cards have no target.</p>")
    out, split = ['<h2 id="listen">Listen</h2>', intro], None
    for card in cards["cards"]:
        if split is not None and card["split"] != split:  # the blind split's cards follow the dev split's
            out.append(f"<h3>The {html.escape(card['split'])} split: no clean target, DNSMOS only</h3>")
        split = card["split"]
        out.append(_card_html(card))
    return "".join(out)


def write_report_html(run_dir: Path, title: str) -> Path:
    """RUN/report.html from RUN/sheet.md and RUN/listen/ (written by render_report after sheet.md)."""
    run_dir = Path(run_dir)
    body = sheet_html((run_dir / "sheet.md").read_text())
    sections = re.findall(r'<h2 id="([^"]+)">([^<]+)</h2>', body)
    cut = body.find("<h2")
    intro, rest = (body[:cut], body[cut:]) if cut >= 0 else ("", body)  # sheet.md's opening paragraph goes on top
    nav = '<a href="#listen">Listen</a>' + "".join(f'<a href="#{i}">{html.escape(html.unescape(t))}</a>'
                                              for i, t in sections)
    page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
            f"<h1>{html.escape(title)}</h1>{intro}<nav>{nav}</nav>{listening_html(run_dir)}{rest}</body></html>\n")
    path = run_dir / "report.html"
    path.write_text(page)
    return path
