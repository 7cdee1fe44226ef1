"""Development sessions: `nox -s tests`, `nox -s bench`, `nox -s lint`.

Each session builds its own virtualenv with pip (not uv: uv ignores the local CPU torch wheel).
"""

import os

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = False

# glibc's allocator is slow on these VMs for training-sized tensors (see docs/PITFALLS.md); large thresholds
# make training steps 25-40 % faster. They change speed only, never results.
MALLOC_ENV = {
    "MALLOC_MMAP_THRESHOLD_": "1000000000",
    "MALLOC_TRIM_THRESHOLD_": "1000000000",
    "MALLOC_TOP_PAD_": "1000000000",
}

BENCH_OUT = os.environ.get("AVSE_BENCH_OUT", "reports/quick-cpu")


PYCLARITY = "pyclarity==0.9.0"  # MBSTOI, without the Clarity toolkit's dependencies (avse_bench/metrics/binaural.py)


def install(session: nox.Session) -> None:
    """The package (non-editable) with its test extras, and pyclarity for MBSTOI without its dependencies."""
    session.install(".[test]")
    session.install("--no-deps", PYCLARITY)


@nox.session(python="3.11")
def tests(session: nox.Session) -> None:
    """Install the package (`install`) and run the whole pytest suite."""
    install(session)
    session.run("pytest", "-q", "-ra", *session.posargs, env=MALLOC_ENV)


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """Main job: compare both systems on the embedded corpus (quick profile), then the micro-benchmarks."""
    install(session)
    session.run(
        "avse-bench", "compare", "baseline", "dcnn_rnn", "--profile", "quick", "--out", BENCH_OUT, "--stress",
        *session.posargs, env=MALLOC_ENV,
    )
    session.run(
        "pytest", "benchmarks", "-q", "--benchmark-only", "--benchmark-max-time=0.5",
        f"--benchmark-json={BENCH_OUT}/benchmarks.json", env=MALLOC_ENV,
    )


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """ruff: style and common bugs."""
    session.install("ruff")
    session.run("ruff", "check", "avse_bench", "systems", "tests", "benchmarks", "noxfile.py")
