"""The episodes of `ingest.imports`: each outside dataset streamed, tagged with its source and domain, fitted to
a bring-your-own domain's catalog, and a stable share of it held out for the test split.

Shared by the `ingest` stage (which writes them after the synthetic episodes) and the `base` stage (whose tiny
tokenizer trains on them when the domain is a tool catalog), so neither stage imports the other.
"""

from __future__ import annotations

from collections.abc import Iterator

from components.config import Params
from components.data.episode import Episode, user_text
from components.data.importers import iter_dataset, iter_import
from components.data.importers.common import Reject
from components.data.inputs import workdir_path
from components.domains import sim


def imported_episodes(params: Params) -> list[Episode]:
    """Every episode of `ingest.imports`, in memory (`iter_imported`, strict)."""
    return list(iter_imported(params))


def iter_imported(params: Params, reject: Reject | None = None) -> Iterator[Episode]:
    """The episodes of every `ingest.imports` entry, in order, one at a time, tagged with its source and domain;
    those of a bring-your-own domain are fitted to its catalog (`importers.common.fit_catalog`). An entry with
    `skip_invalid` hands its bad records to `reject`. An entry with `dataset` reads a Hugging Face dataset's split
    (`importers.iter_dataset`) instead of a file.

    Raises:
        DataError: A bad record of a strict entry, an entry's path leads outside `project.workdir`, or its dataset
            cannot be loaded (the entry named).
    """
    root = params.project.workdir
    for k, item in enumerate(params.ingest.imports):
        what, catalog = f"ingest.imports[{k}]", catalog_for(params, item.domain)
        rejects = reject if item.skip_invalid else None
        if item.dataset is not None:
            episodes = iter_dataset(item.source, item.dataset, item.split or "train", item.subset, item.domain, root,
                                    catalog, rejects, what)
        else:
            path = workdir_path(root, item.path, f"{what}.path")
            answers = workdir_path(root, item.answers, f"{what}.answers") if item.answers else None
            episodes = iter_import(item.source, path, item.domain, answers, catalog, rejects)
        yield from (hold_out(e, item.heldout_fraction) for e in episodes)


def hold_out(episode: Episode, fraction: float) -> Episode:
    """Tag an imported episode for the test split when a stable hash of its request falls under `fraction`.

    The hash is of the normalised user text (`episode.user_text`, what build's leakage check compares), so records
    that repeat a request, whatever their ids and tools, fall on the same side and never straddle train and test;
    the same requests stay held out however the file is ordered or extended. Episodes tagged already keep their
    split. `fraction` 1 holds out every episode (a test-only file).
    """
    key = user_text(episode) or episode.id
    if episode.split is not None or (fraction < 1 and sim.stable_share("request", key) >= fraction):
        return episode
    return episode.model_copy(update={"split": "test"})


def catalog_for(params: Params, domain: str) -> list[dict] | None:
    """The project's own tool catalog when `domain` is the project's bring-your-own domain."""
    if params.project.catalog is None or domain != params.project.domain:
        return None
    from components import domains

    return domains.of(params).catalog()
