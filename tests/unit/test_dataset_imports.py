"""`ingest.imports` entries with `dataset:` (components/data/importers/hub.py): a folder written by `save_to_disk`
and a folder of JSON lines files read with the real `datasets` library give the episodes the same records give from
a file; bad rows, splits, sources and an unknown Hub id (offline) are one error naming the entry."""

from __future__ import annotations

from pathlib import Path

import pytest
from datasets import Dataset, DatasetDict

from components.config import Import
from components.data.episode import DataError, Episode
from components.data.importers import import_file, iter_dataset
from components.data.importers.common import read_records
from components.data.imports import imported_episodes
from components.ingest import Quarantine
from tests.conftest import REPO

FIXTURES = REPO / "tests" / "fixtures" / "importers"
FILES = {"openai": "openai.jsonl", "sharegpt": "sharegpt.json", "hermes": "hermes.jsonl", "xlam": "xlam.json",
         "glaive": "glaive.jsonl"}
# openai's 4th record has content parts (a list) where the others have strings: no Arrow column holds both
NO_ARROW = {"openai": 3}


def records(source: str) -> list[dict]:
    """The fixture's records, every key in every row (`Dataset.from_list` takes its columns from the first row)."""
    rows = [r.data for n, r in read_records(FIXTURES / FILES[source]) if n - 1 != NO_ARROW.get(source)]
    keys = sorted({k for r in rows for k in r})
    return [{k: r.get(k) for k in keys} for r in rows]


def without_arrow_misfits(episodes: list[Episode], source: str) -> list[Episode]:
    return [e for n, e in enumerate(episodes) if n != NO_ARROW.get(source)]


def content(episode: Episode) -> dict:
    """An episode but its id (records without one get `<source>-<file stem>-<n>`, the stem differs here)."""
    return episode.model_dump(exclude={"id"})


@pytest.mark.parametrize("source", sorted(FILES))
def test_saved_dataset_gives_the_episodes_of_the_file(tmp_path, source):
    rows = records(source)
    DatasetDict({"train": Dataset.from_list(rows[:1]), "test": Dataset.from_list(rows)}).save_to_disk(
        str(tmp_path / "saved"))
    got = list(iter_dataset(source, "saved", "test", None, "demo", tmp_path))
    want = without_arrow_misfits(import_file(source, FIXTURES / FILES[source], "demo"), source)
    assert [content(e) for e in got] == [content(e) for e in want] and len(got) == len(rows)
    assert [e.id for e in got if not e.id.startswith(f"{source}-")] == [str(r["id"]) for r in rows
                                                                         if r.get("id") not in (None, "")]
    if source == "openai":  # Arrow filled each tool's properties with every other tool's, as null: dropped again
        weather = next(e for e in got if e.id == "oa-weather-001").tool_dicts()[0]["function"]["parameters"]
        assert sorted(weather["properties"]) == ["location", "unit"]


def test_a_folder_of_json_lines_loads_with_load_dataset_and_the_params_entry(params_factory):
    params = params_factory(ingest={"imports": [
        {"source": "xlam", "dataset": "data/imports/xlam_files", "domain": "demo", "heldout_fraction": 1.0}]})
    folder = Path(params.project.workdir) / "data" / "imports" / "xlam_files"
    folder.mkdir(parents=True)
    Dataset.from_list(records("xlam")).to_json(folder / "part-0.jsonl")
    got = imported_episodes(params)
    want = import_file("xlam", FIXTURES / "xlam.json", "demo")
    assert [content(e) | {"split": None} for e in got] == [content(e) for e in want]
    assert {e.split for e in got} == {"test"} and [e.id for e in got] == [e.id for e in want]


def test_load_dataset_keeps_mixed_columns_as_json(tmp_path):
    """The whole openai fixture (string and list contents, tools of different properties): `load_dataset` types
    such columns as JSON, so a folder of the file gives exactly the file's episodes."""
    (tmp_path / "mixed").mkdir()
    (tmp_path / "mixed" / "openai.jsonl").write_text((FIXTURES / "openai.jsonl").read_text())
    got = list(iter_dataset("openai", "mixed", "train", None, "demo", tmp_path))
    assert [content(e) for e in got] == [content(e) for e in import_file("openai", FIXTURES / "openai.jsonl", "demo")]


def test_unknown_hub_id_offline_is_one_error_naming_the_entry(params_factory, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    params = params_factory(ingest={"imports": [
        {"source": "xlam", "path": "data/a.jsonl", "domain": "demo"},
        {"source": "hermes", "dataset": "no-such-org/no-such-dataset", "domain": "demo"}]})
    Path(params.project.workdir, "data").mkdir()
    Path(params.project.workdir, "data", "a.jsonl").write_text((FIXTURES / "xlam.json").read_text())
    with pytest.raises(DataError) as err:
        imported_episodes(params)
    message = str(err.value)
    assert "ingest.imports[1].dataset" in message and "'no-such-org/no-such-dataset'" in message
    assert "rule 'dataset'" in message and "\n" not in message


def test_bad_split_source_and_entries(tmp_path):
    Dataset.from_list(records("xlam")).save_to_disk(str(tmp_path / "lone"))
    DatasetDict({"train": Dataset.from_list(records("xlam"))}).save_to_disk(str(tmp_path / "dict"))
    assert len(list(iter_dataset("xlam", "lone", "validation", None, "demo", tmp_path))) == 6  # a lone split: any
    with pytest.raises(DataError, match=r"rule 'dataset_split'.*has no split 'test'; it has \['train'\]"):
        list(iter_dataset("xlam", "dict", "test", None, "demo", tmp_path, what="ingest.imports[0]"))
    with pytest.raises(DataError, match=r"rule 'dataset_source'.*'bfcl' cannot be read from a dataset.*`answers`"):
        list(iter_dataset("bfcl", "dict", "train", None, "demo", tmp_path))
    with pytest.raises(DataError, match=r"rule 'path_outside_workdir'"):
        list(iter_dataset("xlam", "../elsewhere", "train", None, "demo", tmp_path / "dict"))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "part.jsonl").write_text('{"query": "a", "tools": "[]", "answers": "[]"}\n{"query": \n')
    with pytest.raises(DataError, match=r"ingest.imports\[2\].dataset: rule 'dataset': 'broken' \(split 'train'\): "
                                        r"loading the folder failed \(\w+: "):
        list(iter_dataset("xlam", "broken", "train", None, "demo", tmp_path, what="ingest.imports[2]"))
    (tmp_path / "file.jsonl").write_text("{}\n")
    with pytest.raises(DataError, match=r"rule 'dataset'.*not a dataset folder"):
        list(iter_dataset("xlam", "file.jsonl", "train", None, "demo", tmp_path))
    with pytest.raises(DataError, match=r"dict:train record 1 \(id 0\).*rule 'field'"):  # xLAM rows as Hermes
        list(iter_dataset("hermes", "dict", "train", None, "demo", tmp_path))
    for bad, why in [({}, "neither"), ({"path": "a", "dataset": "b"}, "both"),
                     ({"path": "a", "split": "test"}, "go with `dataset`")]:
        with pytest.raises(ValueError, match=why):
            Import.model_validate({"source": "xlam", "domain": "d", **bad})


def test_bad_rows_are_set_aside_with_the_dataset_and_row(tmp_path):
    rows = records("xlam")
    rows[2] = rows[2] | {"answers": "[{not json"}
    Dataset.from_list(rows).save_to_disk(str(tmp_path / "saved"))
    with pytest.raises(DataError, match=r"saved:train record 3 \(id 2\).*rule 'json_field'"):
        list(iter_dataset("xlam", "saved", "train", None, "demo", tmp_path))
    with (tmp_path / "rejected.jsonl").open("w") as handle:
        quarantine = Quarantine(tmp_path / "rejected.jsonl", handle)
        kept = list(iter_dataset("xlam", "saved", "train", None, "demo", tmp_path, reject=quarantine))
    assert len(kept) == 5 and dict(quarantine.by_rule) == {"json_field": 1}
    assert '"file": "saved:train", "line": 3' in (tmp_path / "rejected.jsonl").read_text()
