"""What code makes a stage's output: the harness modules it runs (their import closure) and the distributions whose
code computes it, declared once per kind of stage (`STAGE_CODE`) and hashed into the stage's key by `Stages.run`.

The closure is read from the source (`ast`, every `import avse_bench...` and `from avse_bench... import` and every
relative import, at module level or inside functions), never by importing: a stage that runs `avse_bench.train`
depends on every file of avse_bench that `train.py` imports, directly or through others. Distributions are read
with importlib.metadata. So changing `metrics/functional.py` (how SI-SDR is computed) or upgrading pesq re-scores
and re-renders, and does not retrain; changing `train.py` retrains.
"""

from __future__ import annotations

import ast
import functools
import hashlib
from importlib import metadata
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
METRIC_DISTRIBUTIONS = ("numpy", "scipy", "soundfile", "pesq", "pystoi", "speechmos", "onnxruntime", "librosa",
                        "pyclarity")
MODEL_DISTRIBUTIONS = ("torch", "numpy", "opencv-python-headless", "soundfile")
# kind of stage -> (the harness modules it runs, the distributions whose code computes its output)
STAGE_CODE: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "check": (("avse_bench.data.check",), ("numpy", "opencv-python-headless", "soundfile")),
    # training, or reading supplied weights in its place (weights.py: safetensors, h5py for Keras files)
    "train": (("avse_bench.train", "avse_bench.weights"), (*MODEL_DISTRIBUTIONS, "safetensors", "h5py")),
    "enhance": (("avse_bench.enhance", "avse_bench.data.stress"), MODEL_DISTRIBUTIONS),
    "score": (("avse_bench.metrics.scoring",), METRIC_DISTRIBUTIONS),
    "listen": (("avse_bench.report.listen",), ("numpy", "soundfile", "matplotlib", "opencv-python-headless")),
    "profile": (("avse_bench.profiling",), ("torch", "fvcore", "nvidia-ml-py", "psutil", "numpy")),
    # not a stage with a key (a report is rendered anew from the stored files every time): its software for the
    # provenance, the statistics (scipy's bootstrap) and the page (Python-Markdown)
    "report": (("avse_bench.report.render",), ("numpy", "scipy", "pandas", "matplotlib", "markdown", "tabulate")),
}


def all_distributions() -> tuple[str, ...]:
    """Every distribution any stage or the report declares, and avse-bench itself (the manifest's software)."""
    return tuple(dict.fromkeys(d for _, dists in STAGE_CODE.values() for d in dists)) + ("avse-bench",)


def _module_file(name: str) -> Path | None:
    """The source file of an avse_bench module name (a package's __init__.py), or None when there is none."""
    parts = name.split(".")[1:]
    base = PACKAGE_DIR.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path, module: str) -> set[str]:
    """The avse_bench modules a source file imports, anywhere in it (lazy imports inside functions too)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "avse_bench"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "avse_bench":
                continue
            found.add(target)
            found |= {f"{target}.{a.name}" for a in node.names}  # `from pkg import module`
    return {m for m in found if _module_file(m) is not None}


@functools.cache
def closure(modules: tuple[str, ...]) -> tuple[Path, ...]:
    """Every avse_bench source file that `modules` import, directly or not (themselves and the packages above them
    included), sorted."""
    seen: dict[str, Path] = {}
    todo = list(modules)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = _module_file(name)
        if path is None:
            continue
        seen[name] = path
        parents = [".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)]
        todo += [*_imports(path, name), *parents]
    return tuple(sorted(set(seen.values())))


def versions(distributions) -> dict[str, str]:
    """{distribution: installed version, or "not installed"}."""
    out = {}
    for name in distributions:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


@functools.cache
def made_by(kind: str) -> dict:
    """What makes the output of a stage of `kind`: the sha256 of its modules' import closure (by relative path and
    bytes) and the versions of its distributions. Read once per process."""
    modules, distributions = STAGE_CODE[kind]
    digest = hashlib.sha256()
    for path in closure(modules):
        digest.update(f"{path.relative_to(PACKAGE_DIR).as_posix()}\0".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return {"code": digest.hexdigest()[:16], "packages": versions(distributions)}
