"""Hostile and unusual input to the importers and readers (tests/fixtures/bad_inputs/importers/), through the real
`tooltune ingest` entry point: a one-line `error:` naming file, line and rule, exit code 2, no traceback, the old
output untouched; `--skip-invalid` / `skip_invalid: true` set bad records aside; import and catalog paths stay
inside the workdir; a BOM and U+2028/U+2029/U+0085 inside strings are read as text; imports stream."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import pytest

from components import ingest
from components.data.episode import DataError, read_episodes
from components.data.importers import import_file, iter_import
from components.validation.records import read_records
from flows import cli
from tests.conftest import REPO

CORPUS = REPO / "tests" / "fixtures" / "bad_inputs" / "importers"
CASES = json.loads((CORPUS / "cases.json").read_text())
FIXTURES = REPO / "tests" / "fixtures" / "importers"
OLD = b'{"previous": "good file"}\n'


@pytest.fixture
def params_path(params_factory, tmp_path) -> Path:
    params_factory(ingest={"n_episodes": 40})
    return tmp_path / "params.yaml"


def _ingest(params_path: Path, source: str, path: Path, out: Path, *extra: str) -> int:
    return cli.main(["ingest", "--source", source, "--path", str(path), "--out", str(out),
                     "--params", str(params_path), *extra])


def test_corpus_is_complete():
    assert {p.stem for p in CORPUS.glob("*.jsonl")} == set(CASES)
    assert {c["rule"] for c in CASES.values()} >= {"json_depth", "number_size", "json_number", "duplicate_key",
                                                   "unicode", "literal"}
    assert {c["source"] for c in CASES.values()} == {"openai", "sharegpt", "hermes", "xlam"}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_import_fails_with_file_line_and_rule(case, params_path, tmp_path, capsys):
    spec = CASES[case]
    bad, out = CORPUS / f"{case}.jsonl", tmp_path / "episodes.jsonl"
    out.write_bytes(OLD)
    capsys.readouterr()

    assert _ingest(params_path, spec["source"], bad, out) == 2

    err = capsys.readouterr().err
    assert "Traceback" not in err and err.startswith("error: ") and err.count("\n") == 1, err
    assert f"{bad}:{spec['line']}" in err and f"rule '{spec['rule']}'" in err, err
    assert out.read_bytes() == OLD
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("case", sorted(CASES))
def test_skip_invalid_sets_the_bad_record_aside(case, params_path, tmp_path, capsys):
    spec = CASES[case]
    bad, out = CORPUS / f"{case}.jsonl", tmp_path / "episodes.jsonl"

    assert _ingest(params_path, spec["source"], bad, out, "--skip-invalid") == 0

    assert [e.id for e in read_episodes(out)] == ["good-1"]
    rejected = [json.loads(line) for line in (tmp_path / "episodes.jsonl.rejected.jsonl").read_text().splitlines()]
    assert [(r["file"], r["line"], r["rule"]) for r in rejected] == [(str(bad), spec["line"], spec["rule"])]
    assert f"1 record(s) rejected -> {out}.rejected.jsonl  {spec['rule']}=1" in capsys.readouterr().out


def test_data_error_fields_survive_pickling():
    with pytest.raises(DataError) as info:
        import_file("openai", CORPUS / "openai_nan.jsonl", "demo")
    err = info.value
    assert (err.where, err.rule) == (f"{CORPUS / 'openai_nan.jsonl'}:2", "json_number")
    assert str(err) == f"{err.where}: rule 'json_number': {err.detail}"
    again = pickle.loads(pickle.dumps(err))  # ingest and validate run in child processes
    assert (str(again), again.where, again.rule, again.detail) == (str(err), err.where, err.rule, err.detail)


# ---------------------------------------------------------------------------------- unusual but valid


def test_bom_and_unicode_line_separators_are_text(tmp_path):
    """A UTF-8 BOM starts many Windows-written files; U+2028, U+2029 and U+0085 are legal inside JSON strings and
    must not split a JSON line (str.splitlines() splits at them)."""
    rows = [json.loads(line) for line in (FIXTURES / "openai.jsonl").read_text(encoding="utf-8").splitlines()]
    rows[0]["messages"][0]["content"] += " a\u2028b\u2029c\u0085d"
    path = tmp_path / "openai.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode())
    episodes = import_file("openai", path, "demo")
    assert len(episodes) == len(rows) and episodes[0].messages[0].content.endswith(" a\u2028b\u2029c\u0085d")

    out = tmp_path / "episodes.jsonl"
    out.write_bytes(b"\xef\xbb\xbf" + "".join(e.model_dump_json() + "\n" for e in episodes).encode())
    assert read_episodes(out) == episodes
    assert [e for _, e in read_records(out)] == episodes


def test_array_file_over_the_size_limit_is_refused(tmp_path, monkeypatch):
    from components.data import inputs

    monkeypatch.setattr(inputs, "MAX_ARRAY_BYTES", 1000)
    with pytest.raises(DataError) as info:
        import_file("xlam", FIXTURES / "xlam.json", "demo")
    assert info.value.rule == "array_size" and "jq -c" in str(info.value)


def test_jsonl_import_streams(tmp_path):
    """The first episode comes out before the reader reaches a broken last line: nothing reads the file whole."""
    path = tmp_path / "openai.jsonl"
    path.write_bytes((FIXTURES / "openai.jsonl").read_bytes() + b"{broken\n")
    episodes = iter_import("openai", path, "demo")
    assert next(episodes).id == "oa-weather-001"
    with pytest.raises(DataError, match=r"openai.jsonl:7: rule 'json'"):
        list(episodes)


# ---------------------------------------------------------------------------------- params: paths, skip_invalid


def _workdir_with_imports(tmp_path: Path) -> Path:
    imports = tmp_path / "data" / "imports"
    imports.mkdir(parents=True)
    (imports / "shop.jsonl").write_bytes((FIXTURES / "openai.jsonl").read_bytes())
    return imports


@pytest.mark.parametrize("kind", ["dotdot", "symlink"])
def test_import_path_outside_the_workdir_is_refused(kind, params_factory, tmp_path, capsys, migrated_db, monkeypatch):
    shutil.copy(migrated_db, tmp_path / "mlflow.db")  # the stage runs tracked; a migrated DB saves ~10 s
    monkeypatch.setenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "false")
    outside = tmp_path.parent / f"outside-{tmp_path.name}.jsonl"
    outside.write_bytes((FIXTURES / "openai.jsonl").read_bytes())
    if kind == "symlink":
        _workdir_with_imports(tmp_path)
        os.symlink(outside, tmp_path / "data" / "imports" / "link.jsonl")
        given = "data/imports/link.jsonl"
    else:
        given = f"../{outside.name}"
    params = params_factory(ingest={"source": "none", "imports": [{"source": "openai", "path": given,
                                                                   "domain": "shop"}]})
    raw = params.path("raw")
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_bytes(OLD)
    capsys.readouterr()

    assert cli.main(["stage", "ingest", "--params", str(tmp_path / "params.yaml")]) == 2

    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "rule 'path_outside_workdir'" in errors[0] and "Traceback" not in err, err
    assert raw.read_bytes() == OLD
    absolute = params_factory(ingest={"source": "none", "imports": [{"source": "openai", "path": str(outside),
                                                                     "domain": "shop"}]})
    assert ingest.run(absolute).metrics["episodes"] == 6  # an absolute path is the user's own choice
    outside.unlink()


def test_catalog_path_outside_the_workdir_is_refused(params_factory, tmp_path):
    from components import domains

    params = params_factory(project={"domain": "shop", "catalog": "../../etc/catalog.json"},
                            ingest={"source": "none", "imports": [{"source": "openai", "path": "x.jsonl",
                                                                   "domain": "shop"}]})
    with pytest.raises(DataError) as info:
        domains.of(params)
    assert info.value.rule == "path_outside_workdir" and "project.catalog" in str(info.value)


def test_params_skip_invalid_writes_the_quarantine(params_factory, tmp_path):
    imports = _workdir_with_imports(tmp_path)
    (imports / "bad.jsonl").write_bytes((CORPUS / "openai_duplicate_key.jsonl").read_bytes())
    entry = {"source": "openai", "path": "data/imports/bad.jsonl", "domain": "shop"}
    strict = params_factory(ingest={"source": "none", "imports": [entry]})
    with pytest.raises(DataError, match="rule 'duplicate_key'"):
        ingest.run(strict)

    lenient = params_factory(ingest={"source": "none", "imports": [
        {"source": "openai", "path": "data/imports/shop.jsonl", "domain": "shop"}, {**entry, "skip_invalid": True}]})
    result = ingest.run(lenient)
    assert result.metrics["episodes"] == 7 and result.metrics["rejected"] == 1
    assert result.details["rejected_by_rule"] == {"duplicate_key": 1}
    rows = [json.loads(line) for line in Path(result.outputs["rejected"]).read_text().splitlines()]
    assert [(r["file"], r["line"], r["rule"]) for r in rows] == [(str(imports / "bad.jsonl"), 2, "duplicate_key")]

    assert "rejected" not in ingest.run(params_factory(ingest={"source": "none", "imports": [
        {"source": "openai", "path": "data/imports/shop.jsonl", "domain": "shop"}]})).metrics
    assert not Path(result.outputs["rejected"]).exists()  # a strict run leaves no stale quarantine behind
