"""Shared fixtures: params rooted in a temporary workdir, offline Hugging Face, quiet libraries."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]


def write_params(tmp_path: Path, profile: str | None = "quick", **sections: dict) -> Path:
    """Copy the real params.yaml into tmp_path with `project.workdir` there and sections overridden.

    Overrides are merged over the chosen profile, so tests use the real file's values.
    """
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    if profile:
        for key, value in raw["profiles"][profile].items():
            raw[key] = _deep(raw[key], value)
    raw["project"]["workdir"] = str(tmp_path)
    raw["tracking"]["uri"] = f"sqlite:///{tmp_path / 'mlflow.db'}"
    for key, value in sections.items():
        raw[key] = _deep(raw[key], value)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _deep(base, override):
    if not isinstance(base, dict) or not isinstance(override, dict):
        return override
    out = dict(base)
    for key, value in override.items():
        out[key] = _deep(out.get(key), value) if key not in ("shares", "test_size") else value
    return out


@pytest.fixture
def params_factory(tmp_path):
    """Build a `Params` rooted in tmp_path: `params_factory(sft={"max_steps": 3})`."""
    from components.config import load_params

    def make(profile: str | None = "quick", **sections):
        return load_params(write_params(tmp_path, profile, **sections), profile="")

    return make


@pytest.fixture(scope="session")
def migrated_db(tmp_path_factory) -> Path:
    """An empty, fully migrated MLflow DB: creating one costs ~10 s, copying it ~0."""
    from mlflow import MlflowClient

    path = tmp_path_factory.getbasetemp() / "mlflow-migrated.db"
    if not path.exists():
        MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture(autouse=True)
def _tracking_env_per_test():
    """Each test starts without, and leaves behind, the tracking variables a test may export: mlflow's
    `set_tracking_uri` exports $MLFLOW_TRACKING_URI (which `tracking.configure` reads first), and a stage run
    exports its parent run id; one test's store must not become the next one's."""
    names = ("MLFLOW_TRACKING_URI", "TOOLTUNE_PARENT_RUN_ID")
    saved = {name: os.environ.pop(name, None) for name in names}
    yield
    for name, value in saved.items():
        os.environ.pop(name, None)
        if value is not None:
            os.environ[name] = value
