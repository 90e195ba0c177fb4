"""components.register and the MLflow model (components.serving.pyfunc) against a real MLflow SQLite registry and a tiny real model."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from components.training import models
from components import register, tracking
from components.config import load_params
from components.data.episode import DataError

TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A real (random) model folder with the project's tool template: loadable, generates gibberish."""
    root = tmp_path_factory.mktemp("tiny")
    cfg = load_params(tracking.REPO / "params.yaml", profile="").base.tiny
    model, tok = models.build_tiny(cfg, ["some corpus text"] * 50, 0)
    models.apply_tool_template(model, tok)
    models.set_padding(model, tok)
    models.save(model, tok, root / "model", {"spec": "tiny"})
    return root / "model"


@pytest.fixture
def make_params(params_factory, migrated_db, tiny_model, tmp_path, monkeypatch):
    """Params in tmp_path with a fresh registry and the tiny model as both sft and rl candidates."""
    for var in ("MLFLOW_TRACKING_URI", tracking.PARENT_ENV, "TOOLTUNE_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "false")
    shutil.copy(migrated_db, tmp_path / "mlflow.db")

    def make(**sections):
        params = params_factory(**sections)
        for key in ("sft_model", "rl_model"):
            if not params.path(key).exists():
                shutil.copytree(tiny_model, params.path(key))
        return params

    yield make
    while mlflow.active_run():
        mlflow.end_run("KILLED")


def scores(params, base: float, candidate: float, name: str = "rl") -> None:
    path = params.path("metrics") / "evaluate.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"base.single_exact": base, f"{name}.single_exact": candidate,
                                f"{name}.valid_json": 0.9, "base.valid_json": 0.5}))


def test_gate_moves_champion_only_for_a_better_candidate(make_params, tmp_path):
    params = make_params()
    name = params.register_.model_name

    scores(params, base=0.2, candidate=0.5)  # better than base, no champion yet
    first = tracking.execute_stage("register", params)
    client = MlflowClient()
    assert first.details["alias"] == "champion" and first.metrics["promoted"] == 1.0
    assert first.metrics["champion_gate_value"] == -1.0
    v1 = client.get_model_version(name, "1")
    assert v1.tags["candidate"] == "rl" and v1.tags["gate_value"] == "0.5" and v1.tags["gate_metric"] == "single_exact"
    assert v1.tags["metric.valid_json"] == "0.9" and v1.tags["promotion"].startswith("promoted: ")
    assert {"git_commit", "params_hash", "data_version", "profile", "base_model"} <= set(v1.tags)
    assert "single_exact=0.5000" in v1.description
    assert tracking.champion_metrics(params) == {"single_exact": 0.5, "valid_json": 0.9}
    assert json.loads((params.path("metrics") / "register.json").read_text())["version"] == 1.0

    scores(params, base=0.2, candidate=0.4)  # worse than the champion
    second = tracking.execute_stage("register", params)
    assert (second.details["alias"], second.metrics["promoted"]) == ("challenger", 0.0)
    assert "champion v1" in second.details["reason"] and second.metrics["champion_gate_value"] == 0.5
    assert str(client.get_model_version_by_alias(name, "champion").version) == "1"

    scores(params, base=0.2, candidate=0.7)  # better than both: champion moves, the old one is `previous`
    third = register.run(params)  # outside execute_stage: register opens its own run
    assert third.details == {"model_name": name, "version": "3", "alias": "champion", "reason": third.details["reason"],
                             "model_uri": f"models:/{name}/3", "champion_gate_source": "recorded",
                             "pruned_versions": []}
    aliases = {k: str(v) for k, v in client.get_registered_model(name).aliases.items()}  # int from SQLite
    assert aliases == {"champion": "3", "previous": "1", "challenger": "2"}

    agent = mlflow.pyfunc.load_model(f"models:/{name}@champion")  # an MLflow ChatModel: OpenAI in, OpenAI out
    out = agent.predict({"messages": [{"role": "user", "content": "Weather in Paris?"}], "tools": TOOLS,
                         "max_tokens": 4})
    assert out["object"] == "chat.completion" and isinstance(out["choices"][0]["message"]["content"], str)
    assert out["choices"][0]["finish_reason"] == "length"  # 4 random tokens never end the turn
    description = client.get_model_version(name, "3").description
    assert description.startswith("rl candidate, base single_exact=0.2000.") and f"# {name} v3\n" in description
    local = Path(mlflow.artifacts.download_artifacts(f"models:/{name}@champion", dst_path=str(tmp_path / "dl")))
    card = (local / "README.md").read_text()  # the model card travels with the model
    assert card.startswith(f"# {name} v3\n") and card in description and "## Held-out evaluation" in card
    folder = local / "artifacts" / Path(params.paths.rl_model).name  # where MLflow copied the trained model
    assert (folder / "README.md").read_text() == card and (folder / "config.json").is_file()  # beside its weights
    assert sorted(p.name for p in (local / "artifacts").iterdir()) == [folder.name]  # no stray card folder
    assert f"hf upload <user>/<repo> out/artifacts/{folder.name}`" in card
    assert (local / "code" / "components" / "serving" / "pyfunc.py").is_file()  # and so does the code

    client.set_model_version_tag(name, "3", "gate_metric", "other_metric")  # a champion measured otherwise
    scores(params, base=0.2, candidate=0.8)  # another candidate (the same one again would find v3 done)
    with pytest.raises(DataError, match=r"v3 \(alias champion\) has no `gate_value` for gate metric 'single_exact'"):
        register.run(params)


def test_candidate_not_better_than_base_is_a_challenger(make_params):
    params = make_params(evaluate={"models": ["base", "sft"]})
    scores(params, base=0.3, candidate=0.3, name="sft")
    result = register.run(params)
    assert (result.details["alias"], result.metrics["promoted"]) == ("challenger", 0.0)
    assert "does not beat base" in result.details["reason"]
    version = MlflowClient().get_model_version(params.register_.model_name, "1")
    assert version.tags["candidate"] == "sft" and version.tags["promotion"].startswith("not promoted: ")
    assert tracking.champion_metrics(params) is None


def test_missing_scores_raise_data_error_naming_file_and_key(make_params):
    params = make_params()
    evaluate_json = params.path("metrics") / "evaluate.json"
    with pytest.raises(DataError, match=re.escape(f"{evaluate_json}: file not found")):
        register.run(params)
    evaluate_json.parent.mkdir(parents=True)
    evaluate_json.write_text(json.dumps({"base.single_exact": 0.1}))
    with pytest.raises(DataError, match=r"evaluate\.json: missing key\(s\) \['rl\.single_exact'\]"):
        register.run(params)


@pytest.mark.parametrize("candidate, base, champion, gain, promote", [
    (0.5, 0.2, None, 0.0, True), (0.2, 0.2, None, 0.0, False), (0.5, 0.2, 0.5, 0.0, False),
    (0.6, 0.2, 0.5, 0.0, True), (0.6, 0.2, 0.5, 0.1, False), (0.25, 0.2, None, 0.1, False)])
def test_decide(candidate, base, champion, gain, promote):
    assert register.decide("single_exact", candidate, base, champion, gain, "1").promote is promote
