"""The `tooltune` command without Prefect: listing, one stage, and how bad input is reported (exit code 2)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from components.config import ConfigError
from components.data.episode import DataError
from components.validation.rules import ValidationFailed
from components.tracking.workdir import WorkdirBusy
from flows import cli

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def params_path(params_factory, tmp_path) -> Path:
    """The quick-profile params file that `params_factory` writes into tmp_path."""
    params_factory()
    return tmp_path / "params.yaml"


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.delenv("TOOLTUNE_PROFILE", raising=False)
    for key, value in cli.RUN_ENV.items():  # main() sets these; let monkeypatch restore them
        monkeypatch.setenv(key, value)


def test_stages_lists_pipeline_order(capsys):
    assert cli.main(["stages"]) == 0
    assert capsys.readouterr().out.split() == list(cli.STAGES)


def test_stage_runs_without_prefect(tmp_path, params_path, capsys):
    assert cli.main(["stage", "base", "--params", str(params_path)]) == 0
    assert (tmp_path / "artifacts" / "base" / "config.json").is_file()
    assert (tmp_path / "metrics" / "base.json").is_file()
    assert capsys.readouterr().out.startswith("base: ok")


@pytest.mark.parametrize("argv", [
    ["stage", "base", "--profile", "nope"],
    ["run", "--profile", "nope"],
    ["run", "--stages", "ingest,train"],
])
def test_bad_input_is_one_line_no_traceback(params_path, capsys, argv):
    assert cli.main(argv + ["--params", str(params_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err


def test_stage_applies_set_param_overrides(tmp_path, params_path, capsys):
    argv = ["stage", "base", "--params", str(params_path), "-S", "base.tiny.num_hidden_layers=3",
            "--set-param", "base.tiny.hidden_size=32"]
    assert cli.main(argv) == 0
    config = json.loads((tmp_path / "artifacts" / "base" / "config.json").read_text())
    assert (config["num_hidden_layers"], config["hidden_size"]) == (3, 32)  # params.yaml says 2 and 64


@pytest.mark.parametrize(("argv", "message"), [
    (["stage", "base", "-S", "base.tiny.hiden_size=32"], "base.tiny.hiden_size is not a key of params.yaml"),
    (["run", "-S", "sft.max_steps=many"], "sft.max_steps: Input should be a valid integer"),
    (["run", "--stages", "ingest", "-S", "sft.max_steps=0"], "sft.max_steps: Input should be greater than 0"),
])
def test_bad_set_param_exits_2_in_one_line(tmp_path, params_path, capsys, argv, message):
    assert cli.main(argv + ["--params", str(params_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "artifacts").exists()  # refused before any stage ran


def test_missing_params_file(tmp_path, capsys):
    assert cli.main(["stage", "ingest", "--params", str(tmp_path / "absent.yaml")]) == 2
    assert "file not found" in capsys.readouterr().err


def test_user_error_found_behind_wrappers():
    try:
        try:
            raise DataError("episodes.jsonl:3: bad")
        except DataError as inner:
            raise RuntimeError("task failed") from inner
    except RuntimeError as outer:
        assert str(cli.user_error(outer)) == "episodes.jsonl:3: bad"
    assert cli.user_error(ConfigError("x")) is not None and cli.user_error(OSError("x")) is None


class TrackingUnavailable(DataError, OSError):
    """An error type another module may add: a DataError subclass that is also an OSError."""


@pytest.mark.parametrize("error", [ValidationFailed("episodes.jsonl", []), TrackingUnavailable("mlflow down"),
                                   WorkdirBusy("workdir . is in use"), ConfigError("params.yaml: x")])
def test_every_user_error_subclass_exits_2_in_one_line(error, monkeypatch, capsys):
    def fail(args):
        raise RuntimeError("wrapped by a library") from error

    monkeypatch.setattr(cli, "_stages", fail)  # the command `tooltune stages` runs
    assert cli.main(["stages"]) == 2
    assert capsys.readouterr().err == f"error: {error}\n"


@pytest.mark.parametrize("error", [ZeroDivisionError("bug"), OSError("disk"), MemoryError()])
def test_other_errors_keep_their_traceback(error, monkeypatch):
    def fail(args):
        raise error

    monkeypatch.setattr(cli, "_stages", fail)
    with pytest.raises(type(error)):
        cli.main(["stages"])


def test_summary_table():
    table = cli.summary_table({"ingest": {"metrics": {"episodes": 600.0, "seconds": 1.0}, "details": {"seconds": 1.5}},
                               "base": {"metrics": {}, "details": {}}})
    lines = table.splitlines()
    assert lines[0].split() == ["stage", "seconds", "metrics"]
    assert lines[1].split() == ["ingest", "1.5", "episodes=600"]
    assert lines[2].strip() == "base"


def test_console_script():
    script = REPO / ".venv" / "bin" / "tooltune"
    if not script.exists():
        subprocess.run([str(REPO / ".venv/bin/pip"), "install", "--no-deps", "-e", str(REPO)], check=True)
    proc = subprocess.run([str(script), "stages"], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0 and proc.stdout.split() == list(cli.STAGES)


REGISTERED = {"model_name": "tooltune-agent", "version": "3", "model_uri": "models:/tooltune-agent/3"}


def test_run_summary_says_the_registry_decision_the_report_and_how_to_open_both_uis(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    results = {"evaluate": {"outputs": {"report": "w/reports/evaluate.md", "html": "w/reports/evaluate.html"}},
               "register": {"details": REGISTERED | {"alias": "champion", "reason": "exact 0.6000 beats base 0.2000 "
                                                     "and no champion yet by more than 0.01"}}}

    lines = cli.run_summary(results, uri, None).splitlines()

    assert lines[0] == ("Registry: tooltune-agent v3 promoted to `champion`: exact 0.6000 beats base 0.2000 and no "
                        "champion yet by more than 0.01.")
    assert lines[1] == "Evaluation report: w/reports/evaluate.html"
    assert lines[2].split() == ["markdown:", "w/reports/evaluate.md"]
    command = lines[3].removeprefix("MLflow UI: ").split("   ")[0]
    assert command == f"mlflow ui --backend-store-uri {uri} --host 127.0.0.1"
    from mlflow.cli import cli as mlflow_cli  # the options exist in the installed MLflow

    ui = mlflow_cli.get_command(None, "ui")  # an alias of `mlflow server` in MLflow 3
    assert {"--backend-store-uri", "--host"} <= {o for p in ui.params for o in p.opts}
    assert lines[4].startswith("Prefect UI: prefect server start")
    assert "PREFECT_API_URL=http://127.0.0.1:4200/api" in lines[5]


def test_run_summary_for_a_version_not_promoted_and_running_servers():
    results = {"register": {"details": REGISTERED | {"alias": "challenger",
                                                     "reason": "exact 0.2000 does not beat base 0.2000 by more "
                                                               "than 0.01"}}}

    lines = cli.run_summary(results, "http://mlflow.internal:5000", "http://127.0.0.1:4200/api").splitlines()

    assert lines == ["Registry: tooltune-agent v3 not promoted, alias `challenger`: exact 0.2000 does not beat base "
                     "0.2000 by more than 0.01.",
                     "MLflow UI: http://mlflow.internal:5000", "Prefect UI: http://127.0.0.1:4200"]


def test_run_summary_without_evaluate_or_register_names_only_the_uis():
    lines = cli.run_summary({"ingest": {"metrics": {}, "details": {}}}, "sqlite:////w/mlflow.db", None).splitlines()
    assert [line.split(":")[0] for line in lines] == ["MLflow UI", "Prefect UI", "  to follow runs live, keep it "
                                                      "running and run with PREFECT_API_URL=http"]
