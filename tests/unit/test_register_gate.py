"""The promotion gate against this run's champion (paired test, error classes) and the retention of refused
versions, through components.register against a real MLflow SQLite registry and the tiny real model.

The evaluate stage's outputs are written as register reads them: per-episode verdict rows in
`reports/evaluate/<model>_rollouts.jsonl` and metrics/evaluate.json summarised from those rows by
`evaluate.summarize` itself, so the two agree as a real evaluate run's do.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlparse

import pytest
from mlflow import MlflowClient
from mlflow.models import Model

from components import evaluate, register, tracking
from components.data.episode import DataError
from components.tracking import gate, retention
from components.evaluation.verdict import Verdict
from tests.unit.test_register import make_params, scores, tiny_model  # noqa: F401 (fixtures)


def row(i: int, pattern: str, exact: bool, errors: tuple[str, ...] = ()) -> dict:
    """One episode's verdict row as the evaluate stage writes it (the fields register and summarize read)."""
    single = pattern == "single"
    return {"id": f"{pattern}-{i}", "pattern": pattern, "exact": exact, "first_exact": exact if single else None,
            "tool_ok": exact if single else None, "unparsable": False, "errors": list(errors), "completion": exact,
            "failed_calls": 0}


def singles(right: int, n: int = 40, wrong_class: str = "wrong_value") -> list[dict]:
    """`n` single episodes, the first `right` right, the others wrong with `wrong_class`."""
    return [row(i, "single", i < right, () if i < right else (wrong_class,)) for i in range(n)]


def chains(wrong: int, n: int = 20, wrong_class: str = "wrong_order") -> list[dict]:
    """`n` chain episodes, the first `wrong` wrong with `wrong_class`, the others right."""
    return [row(i, "chain", i >= wrong, (wrong_class,) if i < wrong else ()) for i in range(n)]


def evaluated(params, models: dict[str, list[dict]], champion_version: int | None = 1) -> None:
    """Write what the evaluate stage writes for these models: rollouts files and evaluate.json (+ the champion's
    registry version, when given, as `champion.version`)."""
    out = params.path("reports") / "evaluate"
    out.mkdir(parents=True, exist_ok=True)
    metrics = {}
    for name, rows in models.items():
        (out / f"{name}_rollouts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        metrics |= {f"{name}.{k}": v for k, v in evaluate.summarize([Verdict.from_row(r) for r in rows]).items()}
    if champion_version is not None and "champion" in models:
        metrics[gate.VERSION_KEY] = float(champion_version)
    path = params.path("metrics") / "evaluate.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(metrics))


BASE = singles(0) + chains(20, wrong_class="no_call")  # the base model: nothing right


@pytest.fixture
def with_champion(make_params):
    """Params with v1 registered as champion at a recorded single_exact of 0.9 (its own evaluation run)."""
    params = make_params()
    scores(params, base=0.2, candidate=0.9)
    first = register.run(params)
    assert first.details["alias"] == "champion"
    return params


def version_tags(params, version: str) -> dict[str, str]:
    return MlflowClient().get_model_version(params.register_.model_name, version).tags


def test_better_candidate_with_a_grown_error_class_is_not_promoted(make_params):
    params = make_params()
    scores(params, base=0.2, candidate=0.5)  # v1: champion, recorded 0.5 (beaten by 0.75 without the class check)
    register.run(params)
    # single_exact 0.75 against 0.25 (20 won, 0 lost), but 15 chain episodes now break on wrong_order
    evaluated(params, {"base": BASE, "rl": singles(30) + chains(15), "champion": singles(10) + chains(0)})
    result = register.run(params)
    reason = result.details["reason"]
    assert (result.details["alias"], result.metrics["promoted"]) == ("challenger", 0.0), reason
    assert reason.startswith("single_exact 0.7500 beats base 0.0000 by more than 0.0; error class grew beyond "
                             "chance: wrong_order 0 -> 15 episodes"), reason
    assert "wrong_value 30 -> 10 (fewer" in reason and "wrong_order 0 -> 15 (GREW" in reason
    tags = version_tags(params, "2")
    assert tags["promotion"] == "not promoted: " + reason
    assert tags["gate.error.wrong_order"].startswith("0 -> 15 (GREW, p=")
    assert tags["gate.error.wrong_value"].startswith("30 -> 10 (fewer, p=")
    assert tags[register.SOURCE_TAG] == "this run" and tags[register.COMPARED_TAG] == "0.25"
    assert str(MlflowClient().get_model_version_by_alias(params.register_.model_name, "champion").version) == "1"


def test_margin_the_paired_test_does_not_support_is_not_promoted(make_params):
    params = make_params()
    scores(params, base=0.2, candidate=0.5)  # v1: champion, recorded 0.5
    register.run(params)
    # 0.575 against 0.5 this run: 3 won, 0 lost: exact McNemar p = 0.25
    evaluated(params, {"base": BASE, "rl": singles(23) + chains(0), "champion": singles(20) + chains(0)})
    result = register.run(params)
    reason = result.details["reason"]
    assert (result.details["alias"], result.metrics["promoted"]) == ("challenger", 0.0), reason
    assert ("against champion v1 0.5000 (this run's test split) by +0.0750 on 40 paired episodes (3 won, 0 lost, "
            "exact McNemar p=0.25 >= 0.05: the paired test does not support the margin)") in reason
    assert "wrong_value 20 -> 17 (no significant change, p=0.25)" in reason


def test_candidate_clearing_both_is_promoted_on_the_champions_score_of_this_run(with_champion, monkeypatch, capsys):
    params = with_champion  # v1's recorded 0.9 would keep it champion; this run it scores 0.25
    name = params.register_.model_name
    # two more chain failures (redundant_call) than the champion: within chance, listed, not blocking
    evaluated(params, {"base": BASE, "rl": singles(30) + chains(2, wrong_class="redundant_call"),
                       "champion": singles(10) + chains(0)})
    monkeypatch.chdir(params.project.workdir)  # `python -m components.register` as DVC runs it
    monkeypatch.setenv("TOOLTUNE_PROFILE", "")
    register.main()
    console = capsys.readouterr().out.strip().splitlines()[-1]
    assert console.startswith("[register] v2 -> champion: single_exact 0.7500 beats base 0.0000 by more than 0.0; "
                              "single_exact beats champion v1 0.2500 (this run's test split) by +0.5000 on 40 paired "
                              "episodes (20 won, 0 lost, exact McNemar p=1.9e-06 < 0.05) by more than 0.0; error "
                              "classes (episodes with the class, champion v1 -> candidate, level alpha/k = 0.05/2): "
                              "redundant_call 0 -> 2 (no significant change, p=0.5); wrong_value 30 -> 10 (fewer, "
                              "p=1.9e-06)"), console
    client = MlflowClient()
    assert {k: str(v) for k, v in client.get_registered_model(name).aliases.items()} == {"champion": "2",
                                                                                         "previous": "1"}
    tags = version_tags(params, "2")
    assert tags[register.COMPARED_TAG] == "0.25" and tags[register.SOURCE_TAG] == "this run"
    assert tags["gate.error.redundant_call"] == "0 -> 2 (no significant change, p=0.5)"
    assert "wrong_value 30 -> 10 (fewer" in client.get_model_version(name, "2").description
    assert json.loads((params.path("metrics") / "register.json").read_text())["champion_gate_value"] == 0.25


@pytest.mark.parametrize("champion_version, note", [
    (None, "because the evaluate stage did not measure it this run (evaluate.compare_champion off, or no champion "
           "then)"),
    (7, "because this run's evaluate measured v7, not v1")])
def test_champion_not_measured_this_run_is_compared_by_its_recorded_value(with_champion, champion_version, note):
    params = with_champion
    models = {"base": BASE, "rl": singles(30) + chains(0)}
    if champion_version is not None:  # measured, but another version than the champion now
        models["champion"] = singles(10) + chains(0)
    evaluated(params, models, champion_version)
    result = register.run(params)
    reason = result.details["reason"]
    assert (result.details["alias"], result.metrics["champion_gate_value"]) == ("challenger", 0.9), reason
    assert f"(champion v1: compared by the gate_value recorded at its registration, {note}; no paired test, " \
           "no error-class check)" in reason
    assert version_tags(params, "2")[register.SOURCE_TAG] == "recorded"


def test_evaluate_without_the_champions_version_is_taken_as_the_current_champion(with_champion):
    params = with_champion
    evaluated(params, {"base": BASE, "rl": singles(30) + chains(0), "champion": singles(10) + chains(0)}, None)
    result = register.run(params)
    assert result.details["alias"] == "champion"
    assert result.details["reason"].endswith(
        "(evaluate did not record the version of its champion column: taken as v1)")


def test_rows_of_another_evaluate_run_are_refused(with_champion):
    params = with_champion
    evaluated(params, {"base": BASE, "rl": singles(30) + chains(0), "champion": singles(10) + chains(0)})
    stale = params.path("reports") / "evaluate" / "champion_rollouts.jsonl"
    stale.write_text("".join(json.dumps(r) + "\n" for r in singles(12) + chains(0)))
    with pytest.raises(DataError, match=r"champion_rollouts\.jsonl: single_exact from its rows is 0\.3, "
                                        r"metrics/evaluate\.json says champion\.single_exact=0\.25"):
        register.run(params)


@pytest.mark.parametrize("line, rule", [
    ('{"id": "single-3", "pattern": "single", "exact": true}', "id, pattern and errors"),
    ('{"id": "single-3", "pattern": "single", "errors": "wrong_tool"}', "errors must be a list"),
    ('["single-3"]', "id, pattern and errors"), ("{oops", "not valid JSON")])
def test_a_malformed_verdict_row_is_refused_with_its_file_and_line(with_champion, line, rule):
    params = with_champion
    evaluated(params, {"base": BASE, "rl": singles(30) + chains(0), "champion": singles(10) + chains(0)})
    path = params.path("reports") / "evaluate" / "champion_rollouts.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:3] + [line] + lines[4:]) + "\n")
    with pytest.raises(DataError, match=rf"champion_rollouts\.jsonl:4: .*{rule}"):
        register.run(params)


def weights(params, version: str) -> Path:
    """The folder holding a version's Hugging Face model (its fp32 weights) in the local artifact store, as its
    MLmodel file names it."""
    root = Path(urlparse(MlflowClient().get_model_version_download_uri(params.register_.model_name, version)).path)
    folder = Model.load(str(root / "MLmodel")).flavors["python_function"]["artifacts"]["model"]["path"]
    assert folder.startswith(retention.WEIGHTS + "/"), folder
    return root / folder


def test_retention_prunes_old_refused_versions_and_keeps_promoted_ones(make_params):
    params = make_params(register={"keep_unpromoted": 1})
    pruned = {}
    for value in (0.5, 0.4, 0.3, 0.7):  # v1 champion, v2 and v3 refused, v4 champion (v1 previous)
        scores(params, base=0.2, candidate=value)
        result = register.run(params)
        pruned[result.details["version"]] = result.details["pruned_versions"]
    assert pruned == {"1": [], "2": [], "3": ["2"], "4": []}  # v3 registered: v2 is past the newest refused one
    assert not weights(params, "2").exists()
    for version in ("1", "3", "4"):  # promoted (champion, previous) and the newest refused keep their weights
        assert (weights(params, version) / "model.safetensors").is_file(), version
        assert retention.PRUNED_TAG not in version_tags(params, version)
    assert version_tags(params, "2")[retention.PRUNED_TAG].endswith(
        "weights deleted (register.keep_unpromoted=1: not promoted and older than the 1 newest not-promoted "
        "versions); tags, card and code kept, the version no longer loads")
    pruned_root = weights(params, "2").parents[1]  # <version>/artifacts/rl -> <version>
    assert (pruned_root / "MLmodel").is_file() and (pruned_root / "README.md").is_file()  # card and code stay
    assert version_tags(params, "2")["promotion"].startswith("not promoted: ")  # the version and its record stay

    # keep none: v3 is refused but holds `challenger`, so it keeps its weights; v2 is already pruned
    name, client = params.register_.model_name, MlflowClient()  # after register.run pointed MLflow at this store
    assert retention.prune(client, name, 0, register._refused) == []
    assert (weights(params, "3") / "model.safetensors").is_file()
    assert str(client.get_model_version_by_alias(name, "champion").version) == "4"


def test_real_evaluate_outputs_feed_the_paired_gate(make_params):
    """The evaluate stage's own files (a real run with the registry's champion as a column) are what the gate reads."""
    from components.data.fileio import write_jsonl
    from components.domains import generation
    from components.training import models
    from tests.unit.test_evaluate import SHARES, _tiny_chat_model

    params = make_params(evaluate={"models": ["sft"], "batch_size": 4, "max_new_tokens": 4, "max_turns": 1,
                                   "compare_champion": True}, register={"gate_metric": "exact"})
    model, tok = _tiny_chat_model(params, "travel tools weather flights", seed=0)
    models.save(model, tok, params.path("sft_model"), {"spec": "tiny"})  # over make_params' copy: what evaluate ran
    write_jsonl(params.path("splits") / "test.jsonl",
                [e.model_dump(mode="json") for e in generation.generate("travel", 6, SHARES, 0.0, seed=6)])
    metrics = params.path("metrics") / "evaluate.json"
    metrics.parent.mkdir(parents=True, exist_ok=True)
    metrics.write_text(json.dumps({"base.exact": 0.0, "sft.exact": 0.5}))  # v1: the same weights, made champion
    assert register.run(params).details["alias"] == "champion"

    second = evaluate.run(params)  # the champion (v1, these weights) is a column
    n = int(second.metrics["sft.n"])
    # the base model is not evaluated here: a base below any rate lets the gate reach the champion comparison
    metrics.write_text(json.dumps(second.metrics | {"base.exact": -1.0}))
    result = register.run(params)
    reason = result.details["reason"]
    assert result.details["alias"] == "challenger" and result.details["champion_gate_source"] == "this run"
    assert (f"exact does not beat champion v1 {second.metrics['champion.exact']:.4f} (this run's test split) by "
            f"+0.0000 on {n} paired episodes (0 won, 0 lost, exact McNemar p=1)") in reason
    classes = sorted({e for r in map(json.loads, (params.path("reports") / "evaluate" / "sft_rollouts.jsonl")
                      .read_text().splitlines()) for e in r["errors"]})
    assert classes, "random weights make errors"
    for name in classes:  # the same weights: every class unchanged, each listed
        assert f" {name} " in reason and f"(no significant change, p=1)" in reason
        assert version_tags(params, "2")[f"gate.error.{name}"].endswith("(no significant change, p=1)")
