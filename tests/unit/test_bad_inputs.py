"""The bad-input corpus (tests/fixtures/bad_inputs/) through the real stage entry point, one case per file.

Each malformed file must end `tooltune stage validate` (or `build`, for a leak across splits) with exit
code 2 and one `error:` message naming the file, the line (and record id when the line parses) and the
broken rule; no traceback for the user; no partial output; the previous good report, metrics and splits
byte-identical.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from flows.cli import main as cli
from tests.conftest import write_params
from tests.unit.test_validate import _save_tokenizer

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "bad_inputs"
CASES = json.loads((CORPUS / "cases.json").read_text())
KEPT = ("reports", "metrics", "data")  # what a failed stage must leave byte-identical


SHARES = {"single": 0.4, "parallel": 0.2, "chain": 0.2, "irrelevance": 0.2}  # the patterns good.jsonl holds


def _params(workdir: Path, raw: Path, sections: dict) -> Path:
    """Params (quick profile) rooted in `workdir`, reading `raw`, MLflow on a copy of the migrated DB."""
    sections = {**sections, "ingest": {"shares": SHARES, **sections.get("ingest", {})}}
    return write_params(workdir, "quick", paths={"raw": str(raw)}, **sections)


def _tree(root: Path) -> dict[str, bytes]:
    """Every file under the kept folders of `root`, with its bytes."""
    return {str(p.relative_to(root)): p.read_bytes() for top in KEPT for p in sorted((root / top).rglob("*"))
            if p.is_file()}


@pytest.fixture(autouse=True, scope="module")
def _no_system_metrics():
    """No MLflow system-metrics sampler per stage run: seconds per case, and log lines on stderr."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "false")
        yield


@pytest.fixture(scope="module")
def good_run(tmp_path_factory, migrated_db) -> Path:
    """A workdir after a successful validate and build of the good file: the outputs a failure must keep."""
    root = tmp_path_factory.mktemp("good")
    shutil.copy(migrated_db, root / "mlflow.db")
    params = _params(root, CORPUS / "good.jsonl", {"build": {"val_size": 1, "test_size": {"single": 0}}})
    for stage in ("validate", "build"):
        assert cli(["stage", stage, "--params", str(params)]) == 0
    return root


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_fails_with_file_line_and_rule(case, good_run, tmp_path, capsys):
    spec = CASES[case]
    work = tmp_path / "work"
    shutil.copytree(good_run, work)
    bad = CORPUS / f"{case}.jsonl"
    params = _params(work, bad, spec.get("params", {}))
    if spec.get("tokenizer"):
        _save_tokenizer(work / "artifacts" / "base")
    before = _tree(work)
    capsys.readouterr()

    assert cli(["stage", spec.get("stage", "validate"), "--params", str(params)]) == 2

    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and [line[:7] for line in err.splitlines() if line.startswith("error:")] == [
        "error: "]
    assert f"- {spec['rule']}: " in err, err
    named = str(work / "data" / "splits") if spec.get("stage") == "build" else str(bad)
    where = f"{named}/test.jsonl:{spec['line']}" if spec.get("stage") == "build" else (
        f"{named}:{spec['line']}" if spec["line"] else f"{named}: ")
    assert where in err, err
    if spec["id"]:
        assert f"{where} (id {spec['id']})" in err, err
    assert _tree(work) == before  # nothing written, nothing half-written, the previous good version intact
    assert not [p for p in (work / "reports").iterdir() if p.name.startswith(".")]


def test_corpus_is_complete():
    files = {p.stem for p in CORPUS.glob("*.jsonl")} - {"good"}
    assert files == set(CASES) and len(files) >= 25
    assert {c["rule"] for c in CASES.values()} >= {
        "non_empty", "utf8", "json", "record_schema", "arguments_json", "unique_id", "role_order", "tool_result",
        "known_tool", "arguments_match_schema", "dependency_order", "pattern_share", "max_tokens", "split_leakage"}
