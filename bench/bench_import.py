"""Benchmark: importing a big JSON-lines dataset streams it (memory flat in the file size), against a bare baseline.

Generates an OpenAI-format file of `--size-mb` (default 1024) in a scratch folder under /tmp (copies of the
fixture records with unique ids), then runs, each in its own child process (so each peak memory is its own):
- `import`: what `tooltune ingest --source openai` does (`components.ingest.write_source`): every record read,
  converted, checked against its tools' schemas and the Episode model, and streamed into an episodes file (atomic).
- `baseline`: `for line in f: json.loads(line)`, nothing kept.
Reported per part: wall seconds, records/s, peak resident memory (`ru_maxrss`, imports included), and the
import/baseline time ratio. The scratch folder is deleted at the end.

Usage (from the repository root):

    python bench/bench_import.py                 # 1 GB
    python bench/bench_import.py --size-mb 100
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "importers" / "openai.jsonl"


def generate(path: Path, size_mb: int) -> int:
    """Write copies of the fixture records (fresh ids) until the file holds `size_mb` MiB; returns the lines."""
    rows = [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines()]
    target, written, n = size_mb << 20, 0, 0
    with path.open("w", encoding="utf-8") as handle:
        while written < target:
            row = rows[n % len(rows)]
            line = json.dumps({**row, "id": f"bench-{n}"}, ensure_ascii=False) + "\n"
            handle.write(line)
            written += len(line.encode())
            n += 1
    return n


def child(part: str, path: Path, out: Path) -> None:
    """Run one part in this process and print its numbers as one JSON line."""
    start = time.perf_counter()
    if part == "baseline":
        n = 0
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                json.loads(line)
                n += 1
    else:
        sys.path.insert(0, str(REPO))
        from components.config import load_params
        from components.ingest import write_source

        params = load_params(REPO / "params.yaml")
        n = write_source(params, out, "openai", str(path), "bench")[0]
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    print(json.dumps({"part": part, "seconds": seconds, "records": n, "peak_bytes": peak}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--path", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, Path(args.path), Path(args.out))
        return 0
    scratch = Path(tempfile.mkdtemp(prefix="bench_import."))
    try:
        path, out = scratch / "openai.jsonl", scratch / "episodes.jsonl"
        lines = generate(path, args.size_mb)
        size = path.stat().st_size
        print(f"input: {size / 2**20:.0f} MiB, {lines} records")
        results = {}
        for part in ("baseline", "import"):
            done = subprocess.run([sys.executable, __file__, "--child", part, "--path", str(path), "--out", str(out)],
                                  check=True, capture_output=True, text=True, cwd=REPO)
            results[part] = json.loads(done.stdout.strip().splitlines()[-1])
            r = results[part]
            print(f"{part:9} {r['seconds']:8.1f} s  {r['records'] / r['seconds']:9.0f} records/s  "
                  f"peak {r['peak_bytes'] / 2**20:7.0f} MiB ({r['peak_bytes'] / size:.3f} x the input)")
        print(f"import / baseline time: {results['import']['seconds'] / results['baseline']['seconds']:.1f}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
