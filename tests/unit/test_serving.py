"""`tooltune serve` over HTTP with the official `openai` client, `tooltune chat` driven through stdin, and the model
card, on a tiny real model that has learnt one tool call and one text answer (tests/serving_model.py)."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import httpx
import openai
import pytest

from components import domains
from components.serving import terminal
from components.config import load_params
from components.domains import travel
from components.serving import card, chat
from tests import serving_model as memorised
from tests.conftest import REPO, write_params


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    return memorised.cached(tmp_path_factory)


@pytest.fixture(scope="module")
def params_file(tmp_path_factory):
    return write_params(tmp_path_factory.mktemp("serve"), "quick")


def test_serve_speaks_openai_with_tools(model_folder, params_file):
    port = memorised.free_port()
    command = [sys.executable, "-m", "flows.cli", "serve", "--model", str(model_folder), "--port", str(port),
               "--params", str(params_file)]
    with memorised.running(command, f"http://127.0.0.1:{port}/v1/models", REPO):
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", timeout=120, max_retries=0)
        assert [m.id for m in client.models.list().data] == [model_folder.name]

        called = client.chat.completions.create(
            model=model_folder.name, tools=travel.catalog(),
            messages=[{"role": "user", "content": memorised.WEATHER_QUESTION}])
        choice = called.choices[0]
        assert choice.finish_reason == "tool_calls"
        (call,) = choice.message.tool_calls
        assert call.id.startswith("call_") and call.type == "function" and call.function.name == "get_weather"
        assert isinstance(call.function.arguments, str)
        assert json.loads(call.function.arguments) == memorised.WEATHER_CALL["arguments"]
        assert called.usage.completion_tokens > 0 and called.object == "chat.completion"

        # the tool result goes back as OpenAI sends it (arguments as a JSON string, a tool_call_id): the answer is text
        result, _ = travel.execute(travel.TravelEnv(), memorised.WEATHER_CALL)
        answered = client.chat.completions.create(model=model_folder.name, tools=travel.catalog(), messages=[
            {"role": "user", "content": memorised.WEATHER_QUESTION}, choice.message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "name": "get_weather", "content": result}])
        assert answered.choices[0].finish_reason == "stop"
        assert answered.choices[0].message.content == memorised.WEATHER_ANSWER
        assert not answered.choices[0].message.tool_calls

        said = client.chat.completions.create(model=model_folder.name, tools=travel.catalog(),
                                              messages=[{"role": "user", "content": memorised.HELLO}])
        assert (said.choices[0].finish_reason, said.choices[0].message.content) == ("stop", memorised.HELLO_ANSWER)

        cut = client.chat.completions.create(model=model_folder.name, max_tokens=2,
                                             messages=[{"role": "user", "content": memorised.HELLO}])
        assert cut.choices[0].finish_reason == "length"
        streamed = list(client.chat.completions.create(
            model=model_folder.name, tools=travel.catalog(), stream=True,
            messages=[{"role": "user", "content": memorised.WEATHER_QUESTION}]))
        (streamed_call,) = streamed[0].choices[0].delta.tool_calls
        assert streamed_call.index == 0 and streamed_call.id.startswith("call_")
        assert json.loads(streamed_call.function.arguments) == memorised.WEATHER_CALL["arguments"]
        assert [c.choices[0].finish_reason for c in streamed] == [None, "tool_calls"]
        with pytest.raises(openai.BadRequestError, match="non-empty list"):
            client.chat.completions.create(model=model_folder.name, messages=[])
        broken = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", content=b"{not json", timeout=30)
        assert broken.status_code == 400 and "not JSON" in broken.json()["error"]["message"]
    with pytest.raises(httpx.TransportError):  # the server is gone after the block
        httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2)


def test_chat_runs_the_call_in_the_simulator_and_feeds_the_result_back(model_folder, params_file):
    done = subprocess.run([sys.executable, "-m", "flows.cli", "chat", "--model", str(model_folder),
                           "--params", str(params_file)], input=memorised.WEATHER_QUESTION + "\n\n", cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.replace("you> ", "").splitlines()  # the prompt has no newline of its own
    arguments = json.dumps(memorised.WEATHER_CALL["arguments"])
    result, _ = travel.execute(travel.TravelEnv(), memorised.WEATHER_CALL)
    assert lines[1:4] == [f"{terminal.CALL} get_weather({arguments})", f"{terminal.RESULT} {result}",
                          f"model> {memorised.WEATHER_ANSWER}"]


def test_chat_in_a_catalog_domain_shows_calls_it_cannot_run(model_folder, params_file):
    params = load_params(params_file, profile="")
    agent = chat.load(model_folder, params.base.system_prompt)
    catalog_only = domains.Domain("mytools", travel.catalog)  # a catalog domain: tools, no simulator
    out = io.StringIO()
    turns = terminal.run_chat(agent, catalog_only, params, io.StringIO(memorised.WEATHER_QUESTION + "\n"), out)
    text = out.getvalue()
    assert turns == 1 and "no simulator for this domain" in text
    assert f"{terminal.CALL} get_weather(" in text and "(not run: domain mytools has no simulator)" in text
    assert terminal.RESULT not in text


def test_a_missing_model_folder_is_one_clear_error(params_file, tmp_path):
    done = subprocess.run([sys.executable, "-m", "flows.cli", "serve", "--model", str(tmp_path / "nope"),
                           "--params", str(params_file)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2  # a user error
    assert done.stderr.strip() == f"error: {tmp_path / 'nope'}: not a model folder (no config.json); pass a saved " \
                                  "model folder or `champion`"


def test_model_card_holds_data_training_and_held_out_scores(params_file):
    params = load_params(params_file, profile="")
    metrics = params.path("metrics")
    metrics.mkdir(parents=True, exist_ok=True)
    (metrics / "ingest.json").write_text(json.dumps({
        "episodes": 600, "heldout_episodes": 140, "pattern_single": 300, "pattern_chain": 100,
        "pattern_irrelevance": 200, "source_synthetic": 600}))
    (metrics / "build.json").write_text(json.dumps({"train_episodes": 430, "val_episodes": 10, "test_episodes": 29}))
    (metrics / "evaluate.json").write_text(json.dumps({
        "base.exact": 0.1, "rl.exact": 0.55, "rl.unparsable": 0.05, "base.single_exact": 0.2, "rl.single_exact": 0.75,
        "rl.single_completion": 0.8, "rl.single_n": 12, "rl.chain_exact": 0.25, "rl.chain_completion": 0.5,
        "rl.chain_n": 4, "rl.errors.wrong_value": 3, "rl.errors.no_call": 1, "rl.errors.wrong_order": 0}))
    text = card.render(params, "rl", "7")
    assert text.startswith(f"# {params.register_.model_name} v7\n")
    assert f"base model `{params.base.model}`" in text and "domain `travel`" in text
    assert "| single | 300 |" in text and "| irrelevance | 200 |" in text and "train 430, val 10, test 29" in text
    assert f"- SFT: {params.sft.max_steps} steps" in text and f"- RL: {params.rl.algorithm}" in text
    assert "| single | 12 | 0.200 | 0.750 | 0.800 |" in text and "| chain | 4 | - | 0.250 | 0.500 |" in text
    assert "(of 16;" in text and "- wrong_value: 3\n- no_call: 1\n" in text and "wrong_order" not in text
    assert "## Intended use and limits" in text and "hf upload" in text
    assert "- RL:" not in card.render(params, "sft")


def test_serve_binds_to_this_machine_only_by_default():
    from flows.cli import _parser

    args = _parser().parse_args(["serve"])
    assert (args.host, args.model, args.port) == ("127.0.0.1", "champion", 8000)
