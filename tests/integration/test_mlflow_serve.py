"""The registered champion served by `mlflow models serve` (a real subprocess on 127.0.0.1) answers an OpenAI chat
request with tools: the model that register logs is self-contained (its `components` code travels with it).

Marked `integration`: registering and starting MLflow's scoring server take about a minute on 2 cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import shutil
import sys
from pathlib import Path

import httpx
import pytest

from components import register, tracking
from components.domains import travel
from tests import serving_model as memorised
from tests.conftest import REPO

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # a model server's start


def test_mlflow_models_serve_answers_openai_chat_with_tools(params_factory, migrated_db, tmp_path_factory, tmp_path,
                                                            monkeypatch):
    for var in ("MLFLOW_TRACKING_URI", tracking.PARENT_ENV, "TOOLTUNE_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "false")
    shutil.copy(migrated_db, tmp_path / "mlflow.db")
    params = params_factory()
    folder = memorised.cached(tmp_path_factory)
    for key in ("sft_model", "rl_model"):
        shutil.copytree(folder, params.path(key))
    metrics = params.path("metrics")
    metrics.mkdir(parents=True, exist_ok=True)
    (metrics / "evaluate.json").write_text(json.dumps({"base.single_exact": 0.1, "rl.single_exact": 0.9}))
    assert register.run(params).details["alias"] == "champion"

    port = memorised.free_port()
    name = params.register_.model_name
    # outside the checkout and without PYTHONPATH: `components` must come from the model's own code folder
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["MLFLOW_TRACKING_URI"] = tracking.tracking_uri(params)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # MLflow execs `uvicorn`
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{name}@champion",
               "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)]
    with memorised.running(command, f"http://127.0.0.1:{port}/ping", tmp_path, env, timeout=240):
        request = {"messages": [{"role": "user", "content": memorised.WEATHER_QUESTION}],
                   "tools": travel.catalog(), "max_tokens": 96}
        answer = httpx.post(f"http://127.0.0.1:{port}/invocations", json=request, timeout=120)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        choice = body["choices"][0]
        assert body["object"] == "chat.completion" and choice["finish_reason"] == "tool_calls"
        (call,) = choice["message"]["tool_calls"]
        assert call["id"].startswith("call_") and call["type"] == "function"
        assert call["function"]["name"] == "get_weather"
        assert json.loads(call["function"]["arguments"]) == memorised.WEATHER_CALL["arguments"]

        hello = httpx.post(f"http://127.0.0.1:{port}/invocations", timeout=120,
                           json={"messages": [{"role": "user", "content": memorised.HELLO}],
                                 "tools": travel.catalog()}).json()  # as learnt: a prompt with the catalog
        assert hello["choices"][0]["message"]["content"] == memorised.HELLO_ANSWER

    # `--model champion`: tooltune chat downloads the registry's champion and runs its call in the simulator
    done = subprocess.run([sys.executable, "-m", "flows.cli", "chat", "--model", "champion", "--params",
                           str(tmp_path / "params.yaml")], input=memorised.WEATHER_QUESTION + "\n\n", cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"model> {memorised.WEATHER_ANSWER}" in done.stdout and "<- result {" in done.stdout
