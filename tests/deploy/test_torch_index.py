"""deploy/torch_index.py decides where setup.sh's CPU torch comes from, against pip configs built here.

Each case is an isolated pip configuration (PIP_CONFIG_FILE, no PIP_* variables, no system or
user pip.conf but the cert-only /etc/pip.conf) over a local PEP 503 index that plays PyPI and a
local wheel directory; the wheels are tiny stand-ins named like the real builds. No network.
"""

import os
import runpy
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "torch_index.py"


def _wheel(directory: Path, version: str) -> Path:
    """A minimal valid pure-Python wheel of a package named torch."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"torch-{version}-py3-none-any.whl"
    info = f"torch-{version}.dist-info"
    files = {
        "torch/__init__.py": "",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: torch\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
        archive.writestr(f"{info}/RECORD", "".join(f"{name},,\n" for name in files) + f"{info}/RECORD,,\n")
    return path


def _decide(tmp_path: Path, *, local_wheels: list[str]) -> str:
    """torch_index.py's answer under a pip config: a PyPI-like index with plain torch 2.13.0 only,
    plus a find-links directory holding `local_wheels` (versions)."""
    _wheel(tmp_path / "pypi" / "simple" / "torch", "2.13.0")
    for version in local_wheels:
        _wheel(tmp_path / "wheels", version)
    (tmp_path / "wheels").mkdir(exist_ok=True)
    (tmp_path / "constraints.txt").write_text("")
    config = tmp_path / "pip.conf"
    config.write_text(
        f"[global]\nindex-url = file://{tmp_path / 'pypi' / 'simple'}\n"
        f"find-links = {tmp_path / 'wheels'}\nconstraint = {tmp_path / 'constraints.txt'}\n"
    )
    env = {name: value for name, value in os.environ.items() if not name.startswith("PIP_")}
    env |= {
        "PIP_CONFIG_FILE": str(config),
        "XDG_CONFIG_DIRS": str(tmp_path / "xdg"),
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / "home-config"),
    }
    result = subprocess.run([sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_plain_pypi_gets_the_pytorch_cpu_index(tmp_path: Path) -> None:
    assert _decide(tmp_path, local_wheels=[]) == "--extra-index-url https://download.pytorch.org/whl/cpu"


def test_configured_local_wheels_need_no_extra_index(tmp_path: Path) -> None:
    assert _decide(tmp_path, local_wheels=["2.13.0+cpu"]) == ""


def test_another_cpu_build_is_not_the_pinned_one(tmp_path: Path) -> None:
    assert _decide(tmp_path, local_wheels=["2.12.0+cpu"]) == "--extra-index-url https://download.pytorch.org/whl/cpu"


def test_the_pin_is_read_from_the_cpu_extra() -> None:
    script = runpy.run_path(str(SCRIPT))
    assert script["torch_requirement"](ROOT / "pyproject.toml") == "torch==2.13.0+cpu"
