"""Records from Hugging Face `datasets`: an `ingest.imports` entry with `dataset:` instead of `path:`.

`dataset` is one of
- a folder under `project.workdir` written by `Dataset.save_to_disk` / `DatasetDict.save_to_disk` (it holds
  `state.json` or `dataset_dict.json`): read with `datasets.load_from_disk`;
- another folder under the workdir (json, jsonl, parquet, csv files): read with `datasets.load_dataset(folder)`;
- else a Hub dataset id (`Salesforce/xlam-function-calling-60k`): `datasets.load_dataset(id, subset, split=split)`,
  from the local cache when offline. It fails, offline and not cached, as one `DataError` naming the entry.
A relative path that exists under the workdir is a folder; one that does not is taken for a Hub id.

Each row goes to the entry's format converter (`xlam`, `hermes`, `openai`, `sharegpt`) as a record of a file would,
errors naming `<dataset>:<split> record <n>`. Arrow gives every row of a column one type: a dataset built with
`Dataset.from_list` types a column of JSON objects as a struct that holds, in each row, every key any row has, absent
ones as null (a tool's `properties`, a call's `arguments`). Null values are dropped from the rows' objects before
conversion, which gives back what each record wrote, except a key a record wrote as null itself. Datasets that keep
tools and calls as JSON text (xLAM, Hermes function calling) are read exactly, and so are JSON files through
`load_dataset`, which types mixed columns as JSON. BFCL needs its question and possible-answer files together: give those as `path` and `answers`.
A Hub dataset is not a DVC dependency (ingest would not rerun when it changes): `save_to_disk` it under the workdir
to version it.

Reads: the dataset (or the Hub, through `datasets`' cache). Writes: `datasets`' own cache.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from components.data.episode import DataError
from components.data.importers.common import Record
from components.data.inputs import workdir_path
from components.toolcalls.schema import short

SAVED = ("state.json", "dataset_dict.json")  # what `save_to_disk` writes beside the Arrow files


def rows(dataset: str, split: str, subset: str | None, workdir: str | Path,
         what: str) -> tuple[Path, Iterator[tuple[int, Record]]]:
    """(where the rows come from, `<dataset>:<split>`; its rows as numbered records, nulls dropped).

    Args:
        dataset: A folder under `workdir` (saved or of data files) or a Hub dataset id.
        split: The split to read (`train`, `test`, ...).
        subset: The dataset's configuration name, if it has several.
        workdir: `project.workdir`, where relative folders are.
        what: The params entry, for errors (`ingest.imports[2]`).

    Raises:
        DataError: The folder or id cannot be loaded, or has no such split.
    """
    data = _load(dataset, split, subset, workdir, what)
    label = Path(f"{dataset}:{split}")
    if len(data) == 0:
        raise DataError(where=str(label), rule="non_empty", detail=f"{what}: the split holds no record")
    return label, ((n, Record(label, n, _without_nulls(row), in_array=True)) for n, row in enumerate(data, 1))


def _load(dataset: str, split: str, subset: str | None, workdir: str | Path, what: str) -> Any:
    import datasets

    folder = _folder(dataset, workdir, what)
    try:
        if folder is not None and any((folder / name).is_file() for name in SAVED):
            return _split(datasets.load_from_disk(str(folder)), split, dataset, what)
        return datasets.load_dataset(str(folder or dataset), subset, split=split)
    except DataError:
        raise
    except Exception as err:  # noqa: BLE001 - `datasets` raises a dozen kinds (hub, network, file, schema); all end here
        how = ("loading the folder failed" if folder is not None else "no folder under project.workdir has this "
               "name, and loading it from the Hugging Face Hub failed")
        raise DataError(where=f"{what}.dataset", rule="dataset",
                        detail=f"{dataset!r} (split {split!r}{f', subset {subset!r}' if subset else ''}): {how} "
                               f"({type(err).__name__}: {short(str(err), 200)}); offline, only a folder or a Hub "
                               f"dataset already in the local cache loads") from None


def _folder(dataset: str, workdir: str | Path, what: str) -> Path | None:
    """The local folder `dataset` names, or None (a Hub id)."""
    given = Path(dataset)
    if not (given.is_absolute() or dataset.startswith(".") or (Path(workdir) / given).exists()):
        return None
    folder = workdir_path(workdir, dataset, f"{what}.dataset")
    if not folder.is_dir():
        raise DataError(where=str(folder), rule="dataset", detail=f"{what}.dataset: not a dataset folder")
    return folder


def _split(saved: Any, split: str, dataset: str, what: str) -> Any:
    """The `split` of what `load_from_disk` gave: a DatasetDict's split, or a lone Dataset saved as that split."""
    import datasets

    if isinstance(saved, datasets.DatasetDict):
        if split not in saved:
            raise DataError(where=f"{what}.dataset", rule="dataset_split",
                            detail=f"{dataset!r} has no split {split!r}; it has {sorted(saved)}")
        return saved[split]
    if saved.split is not None and str(saved.split) != split:
        raise DataError(where=f"{what}.dataset", rule="dataset_split",
                        detail=f"{dataset!r} is the {str(saved.split)!r} split, not {split!r}")
    return saved


def _without_nulls(value: Any) -> Any:
    """`value` with every null object member dropped, recursively (see the module docstring: Arrow's filled keys)."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value
