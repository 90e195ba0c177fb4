"""Great Expectations for the validate stage: one expectation per frame rule, run in an ephemeral context.

Reads: the frames of `validation.frames`; the expectations come from the rule table (`validation.rules`). Writes: the GX Data Docs site (HTML) into a folder when asked.
The only module that imports great_expectations, inside its functions: GX takes seconds to import.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from components.config import Validate
from components.validation.rules import RULES


def expectations(v: Validate, with_tokens: bool) -> dict[str, Any]:
    """The GX expectation of each file rule (`RULES`, frame rules but the cross-split ones; `max_tokens` only
    `with_tokens`); each carries its rule name in `meta`."""
    skipped = {"max_tokens"} if not with_tokens else set()
    return _built(v, [name for name, rule in RULES.items()
                      if rule.expect and rule.frame != "splits" and name not in skipped])


def split_expectations(v: Validate) -> dict[str, Any]:
    """The GX expectations of the cross-split rules."""
    return _built(v, [name for name, rule in RULES.items() if rule.frame == "splits"])


def _built(v: Validate, names: list[str]) -> dict[str, Any]:
    """The named rules' expectations, built from the table's class name and arguments."""
    import great_expectations.expectations as gxe

    found = {}
    for name in names:
        kind, arguments = RULES[name].expect
        found[name] = getattr(gxe, kind)(**arguments(v))
    return _tagged(found)


def _tagged(found: dict[str, Any]) -> dict[str, Any]:
    for rule, expectation in found.items():
        expectation.meta = {"rule": rule}
    return found


def _crash_message(info: dict[str, Any] | None) -> str | None:
    """The exception message when GX caught one while computing an expectation (flat or per metric)."""
    if not info:
        return None
    if "raised_exception" in info:
        return str(info.get("exception_message")) if info["raised_exception"] else None
    crashed = [str(sub.get("exception_message")) for sub in info.values()
               if isinstance(sub, dict) and sub.get("raised_exception")]
    return "; ".join(crashed) or None


def run_suites(frames: dict[str, pd.DataFrame], checks: dict[str, Any],
               docs: Path | None = None) -> dict[str, list[int]]:
    """Run the expectations of each rule on its frame (`RULES[rule].frame`) in an ephemeral GX context.

    Args:
        frames: Frame name -> frame.
        checks: Rule -> its GX expectation.
        docs: Folder to build the GX Data Docs site in (HTML), or None for no site.

    Returns:
        Rule -> row indexes of its frame that break it (empty when the rule passed).

    Raises:
        RuntimeError: GX caught an exception inside an expectation: a bug in tooltune, not bad data.
    """
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)  # no tqdm noise in CI logs
    if docs is not None:
        ctx.variables.data_docs_sites = {"local_site": {
            "class_name": "SiteBuilder", "show_how_to_buttons": False,
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"}}}
    source = ctx.data_sources.add_pandas(name="tooltune")
    unexpected: dict[str, list[int]] = {}
    for name, frame in frames.items():
        mine = [exp for rule, exp in checks.items() if RULES[rule].frame == name]
        if not mine:
            continue
        batch = source.add_dataframe_asset(name=name).add_batch_definition_whole_dataframe("all")
        suite = ctx.suites.add(gx.ExpectationSuite(name=f"{name}_suite", expectations=mine))
        definition = ctx.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))
        result = definition.run(batch_parameters={"dataframe": frame}, result_format={"result_format": "COMPLETE"})
        for res in result.results:
            rule = res.expectation_config.meta["rule"]
            crash = _crash_message(res.exception_info)
            rows = list(res.result.get("unexpected_index_list") or [])
            if crash or (not res.success and not rows):
                raise RuntimeError(f"validate: expectation {rule} ({res.expectation_config.type}) crashed "
                                   f"(a bug in tooltune, not bad data): {crash or 'failed without naming rows'}")
            unexpected[rule] = [] if res.success else rows
    if docs is not None:
        ctx.build_data_docs()
    return unexpected

