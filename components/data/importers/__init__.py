"""Importers: outside tool-calling datasets -> canonical episodes (components.data.episode.Episode).

One module per format (openai, sharegpt, hermes, xlam, glaive, bfcl); `SOURCES` maps a
source name to its importer and `import_file` runs one. Each episode gets `source` = the source name, the
given `domain`, the record's id (else `<source>-<file stem>-<line>`), and `pattern` and `expected.steps`
inferred from its assistant turns. Bad input raises `DataError` naming file, line (or record) and rule;
`iter_import` streams the episodes and can set bad records aside instead (`reject`, for `--skip-invalid`).
`iter_dataset` does the same for the rows of a Hugging Face dataset (`hub`: an id, or a local dataset folder).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from components.data.episode import DataError, Episode
from components.data.importers import glaive, hermes, openai, sharegpt, xlam
from components.data.importers.common import Convert, Reject, import_records, import_rows

Importer = Callable[[Path, str, Path | None, list[dict[str, Any]] | None, Reject | None], Iterable[Episode]]


def _records(source: str, convert: Convert) -> Importer:
    """The importer of a record-per-line format: it takes no answers file."""

    def run(path: Path, domain: str, answers: Path | None, catalog: list[dict[str, Any]] | None,
            reject: Reject | None) -> Iterator[Episode]:
        if answers is not None:
            raise DataError(f"{answers}: an answers file goes with the bfcl source only, not {source}")
        return import_records(path, source, domain, convert, catalog, reject)

    return run


def _bfcl(path: Path, domain: str, answers: Path | None, catalog: list[dict[str, Any]] | None,
          reject: Reject | None) -> list[Episode]:
    """BFCL question file (+ possible-answer file), tagged with `domain`; strict (`reject` is not used: the
    questions and answers files are checked against each other as wholes)."""
    from components.data.importers import bfcl  # loaded only when BFCL data is imported

    if catalog is not None:
        raise DataError(f"{path}: rule 'catalog': BFCL questions bring their own functions; import them under a "
                        f"domain other than the catalog's ({domain})")
    return [e.model_copy(update={"domain": domain}) for e in bfcl.import_episodes(path, answers)]


CONVERTERS: dict[str, Convert] = {m.SOURCE: m.convert for m in (openai, sharegpt, hermes, xlam, glaive)}  # records
SOURCES: dict[str, Importer] = {**{name: _records(name, convert) for name, convert in CONVERTERS.items()},
                                "bfcl": _bfcl}


def import_file(source: str, path: str | Path, domain: str, answers: str | Path | None = None,
                catalog: list[dict[str, Any]] | None = None) -> list[Episode]:
    """Import one file of `source` into episodes of `domain` (all in memory; `iter_import` streams them).

    Args:
        source: A key of `SOURCES`.
        path: The input file (JSON lines, or one JSON array of records).
        domain: The domain name the episodes are tagged with.
        answers: BFCL only: the possible-answer file matching `path`.
        catalog: A bring-your-own domain's tools: a record without tools gets them all, a record with tools may
            use only catalog tools.

    Raises:
        DataError: Unknown source, or bad input (file, line or record, and rule named).
    """
    return list(iter_import(source, path, domain, answers, catalog))


def iter_import(source: str, path: str | Path, domain: str, answers: str | Path | None = None,
                catalog: list[dict[str, Any]] | None = None, reject: Reject | None = None) -> Iterator[Episode]:
    """`import_file`, one episode at a time (a JSONL file is read line by line); with `reject`, each bad record
    is handed to it and skipped instead of raising (file-level errors still raise).

    Raises:
        DataError: Unknown source, or bad input (file, line or record, and rule named).
    """
    if source not in SOURCES:
        raise DataError(f"unknown import source {source!r}; known: {sorted(SOURCES)}")
    yield from SOURCES[source](Path(path), domain, Path(answers) if answers is not None else None, catalog, reject)


def iter_dataset(source: str, dataset: str, split: str, subset: str | None, domain: str, workdir: str | Path,
                 catalog: list[dict[str, Any]] | None = None, reject: Reject | None = None,
                 what: str = "dataset") -> Iterator[Episode]:
    """`iter_import` of a Hugging Face dataset's `split` (`hub.rows`: a Hub id, or a folder under `workdir`), each
    row one record of the `source` format; `what` names the params entry in errors.

    Raises:
        DataError: A source that is no record format (bfcl), a dataset that cannot be loaded, or bad input.
    """
    if source not in CONVERTERS:
        raise DataError(where=f"{what}.source", rule="dataset_source",
                        detail=f"{source!r} cannot be read from a dataset; the record formats are {sorted(CONVERTERS)}"
                               + (" (bfcl: give the question file as `path` and its answers as `answers`)"
                                  if source == "bfcl" else ""))
    from components.data.importers import hub  # `datasets` is imported only when a dataset is read

    label, records = hub.rows(dataset, split, subset, workdir, what)
    yield from import_rows(records, label, source, domain, CONVERTERS[source], catalog, reject)
