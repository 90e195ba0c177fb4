"""Evaluation: verdicts on hand-made rollouts, headline metrics, the report, and a real rollout loop."""

import json

import pytest

from components import domains, evaluate
from components.evaluation import report as eval_report, rollout
from components.evaluation.verdict import Verdict
from components.training import models
from components.domains import generation
from tests.rollouts import gold_rollout

SHARES = {"single": 0.4, "parallel": 0.2, "chain": 0.2, "irrelevance": 0.2}


def _tiny_chat_model(params, text: str, seed: int):
    """The random tiny model with the project's tool template and padding, as the base stage makes it."""
    model, tok = models.build_tiny(params.base.tiny, [text] * 50, seed=seed)
    models.apply_tool_template(model, tok)
    models.set_padding(model, tok)
    return model, tok


def test_perfect_and_broken_rollouts_score_as_expected():
    domain = domains.get("travel")
    episodes = generation.generate("travel", 40, SHARES, 0.0, seed=3)
    rows = [rollout.judge(gold_rollout(ep, domain), ep) for ep in episodes]
    assert all(r.exact and r.completion for r in rows)
    metrics = evaluate.summarize(rows)
    assert metrics["single_exact"] == metrics["irrelevance_no_call"] == metrics["unparsable"] + 1 == 1.0
    assert not [k for k in metrics if k.startswith("refused.")]  # no check refused anything
    chain = next(ep for ep in episodes if ep.pattern == "chain")
    stopped = gold_rollout(chain, domain)
    stopped.steps = stopped.steps[:1]
    row = rollout.judge(stopped, chain)
    assert not row.exact and "premature_stop" in row.errors and row.first_exact
    garbled = rollout.Rollout(chain.id, [], unparsable=True, final="<tool_call>{")
    assert rollout.judge(garbled, chain).errors == ("unparsable",)
    looping = gold_rollout(chain, domain)
    looping.steps, looping.final, looping.goal_reached = looping.steps[:1] * 4, None, False
    row = rollout.judge(looping, chain)  # turn cap reached, still calling: goal never reached
    assert {"step_limit", "wrong_final_state", "redundant_call"} <= set(row.errors) and not row.completion
    vague = gold_rollout(chain, domain)
    vague.messages = [m if m["role"] != "assistant" or m.get("tool_calls") else {**m, "content": "All done!"}
                      for m in vague.messages]
    row = rollout.judge(vague, chain)  # right calls, goal reached, but the answer states none of the results
    assert row.exact and not row.stated and not row.completion and chain.expected.outputs


def test_a_verdict_row_reads_back_as_the_same_verdict():
    domain = domains.get("travel")
    chain = next(ep for ep in generation.generate("travel", 40, SHARES, 0.0, seed=3) if ep.pattern == "chain")
    judged = rollout.judge(gold_rollout(chain, domain), chain)
    row = json.loads(json.dumps(judged.row()))
    assert Verdict.from_row(row) == judged and row["rollout"]["episode_id"] == chain.id and row["errors"] == []
    assert (row["stated"], row["failed_calls"]) == (True, 0) and "output" not in row  # a rollout's fields only
    for bad in ({"pattern": "chain"}, {"id": "x", "pattern": "chain", "errors": "wrong_tool"}, ["x"]):
        with pytest.raises(ValueError, match="verdict row"):
            Verdict.from_row(bad)


def test_report_tables_and_plots(tmp_path):
    results = {"base": {"single_exact": 0.0, "unparsable": 0.5, "single_n": 4.0, "errors.no_call": 3.0},
               "sft": {"single_exact": 0.75, "unparsable": 0.0, "single_n": 4.0, "errors.wrong_tool": 1.0}}
    files = eval_report.write(results, tmp_path / "evaluate.md", tmp_path)
    text = (tmp_path / "evaluate.md").read_text()
    assert "| single: exact call | 0.0% | 75.0% |" in text
    assert "| no_call | 3 | 0 |" in text and "| wrong_tool | 0 | 1 |" in text
    assert all((tmp_path / name).stat().st_size > 0 for name in ("accuracy.csv", "accuracy.png", "errors.png"))
    assert len(files) == 4 and files[-1] == str(tmp_path / "evaluate.html")  # no training CSVs here


def test_batched_rollout_loop_runs_a_real_model(params_factory):
    params = params_factory()
    model, tok = _tiny_chat_model(params, "travel tools weather flights", seed=0)
    episodes = generation.generate("travel", 6, SHARES, 0.0, seed=4)
    outs = rollout.run_episodes(model, tok, episodes, domains.get("travel"), params.base.system_prompt,
                                rollout.Decoding(batch_size=4, max_new_tokens=8, max_turns=2))
    assert [o.episode_id for o in outs] == [e.id for e in episodes]
    for out in outs:  # a random model rambles: truncated output is the verdict, not a crash
        assert out.turns >= 1 and (out.unparsable or out.final is not None)
        assert out.messages[0]["role"] == "system"


def test_shared_prefix_generation_matches_plain_generation(params_factory):
    """The cached system turn changes the cost, not the text: same greedy output as a plain left-padded batch."""
    import torch

    params = params_factory()
    model, tok = _tiny_chat_model(params, "travel tools weather flights hotels", seed=1)
    episodes = generation.generate("travel", 5, SHARES, 0.0, seed=5)
    convs = [[{"role": "system", "content": params.base.system_prompt}] + e.prompt_messages() for e in episodes]
    tools = [e.tool_dicts() for e in episodes]
    cache = rollout.PrefixCache(model, tok)
    for conv, tool in zip(convs, tools):
        prefix, rest = cache.split(conv, tool)
        full = tok.apply_chat_template(conv, tools=tool, add_generation_prompt=True, tokenize=False)
        assert prefix and tok(full, add_special_tokens=False)["input_ids"] == cache._ids(prefix) + rest
    cached = rollout.generate(model, tok, convs, tools, 12, cache)
    tok.padding_side = "left"
    prompts = [tok.apply_chat_template(c, tools=t, add_generation_prompt=True, tokenize=False)
               for c, t in zip(convs, tools)]
    enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=12, do_sample=False, pad_token_id=tok.pad_token_id,
                             eos_token_id=tok.eos_token_id)
    plain = [tok.decode([i for i in row.tolist() if i != tok.pad_token_id], skip_special_tokens=False)
             for row in out[:, enc["input_ids"].shape[1]:]]
    assert [c.split(tok.eos_token)[0] for c in cached] == [p.split(tok.eos_token)[0] for p in plain]


def test_pass_tables_per_model_and_pattern_and_their_plot(tmp_path):
    from components.evaluation import passk

    def group(pattern, exact):
        return [Verdict.from_row({"id": f"{pattern}#{i}", "pattern": pattern, "exact": e, "completion": True})
                for i, e in enumerate(exact)]

    sampled = passk.summarize([group("single", [True, False, False]), group("chain", [False, True, True])])
    files = eval_report.write({"base": {"single_exact": 0.0}, "sft": {"single_exact": 0.5, **sampled}},
                              tmp_path / "evaluate.md", tmp_path)
    text = (tmp_path / "evaluate.md").read_text()
    assert "pass@j / pass^j: base" not in text and "## pass@j / pass^j: sft (k = 3 samples, success = exact)" in text
    for row in ("| all | 50.0% | 83.3% | 100.0% | 50.0% | 16.7% | 0.0% |",
                "| chain | 66.7% | 100.0% | 100.0% | 66.7% | 33.3% | 0.0% |",
                "| single | 33.3% | 66.7% | 100.0% | 33.3% | 0.0% | 0.0% |",
                "| all (task completed) | 100.0% | 100.0% | 100.0% | 100.0% | 100.0% | 100.0% |"):
        assert row in text
    assert str(tmp_path / "pass_k.png") in files and (tmp_path / "pass_k.png").stat().st_size > 0


def test_sampled_rollouts_are_seeded_and_differ_from_greedy(params_factory):
    params = params_factory()
    model, tok = _tiny_chat_model(params, "travel tools weather flights", seed=0)
    episodes = generation.generate("travel", 3, SHARES, 0.0, seed=4)

    def roll(sampling):
        decoding = rollout.Decoding(batch_size=4, max_new_tokens=6, max_turns=1, sampling=sampling)
        return [ro.__dict__ for ro in rollout.run_episodes(model, tok, episodes, domains.get("travel"),
                                                            params.base.system_prompt, decoding)]

    hot = rollout.Sampling(temperature=1.5, top_p=1.0, seed=7)
    sampled = roll(hot)
    assert roll(hot) == sampled  # same seed, same samples
    assert roll(rollout.Sampling(1.5, 1.0, seed=8)) != sampled
    greedy = roll(None)
    assert all(g["final"] != s["final"] for g, s in zip(greedy, sampled))


def _ends_turn_with(model, tok, p: float) -> None:
    """Make the model end its turn with probability `p` at every token (at temperature 1): its sampled answers to
    irrelevance episodes (right when they make no call) then succeed or run past max_new_tokens by chance."""
    import math

    import torch

    def hook(module, inputs, logits):
        others = logits.clone()
        others[..., tok.eos_token_id] = float("-inf")
        logits = logits.clone()
        logits[..., tok.eos_token_id] = torch.logsumexp(others, dim=-1) + math.log(p / (1 - p))
        return logits

    model.lm_head.register_forward_hook(hook)


def test_k_sample_evaluation_reports_pass_at_and_pass_hat(params_factory, monkeypatch):
    """samples=3: pass@j / pass^j metrics, table, plot and per-episode samples, greedy metrics untouched; samples=1:
    none of it. The samples decode as the greedy column does (`decoding.constrained`)."""

    from components.data.fileio import write_jsonl

    k, evaluate_cfg = 3, {"models": ["sft"], "batch_size": 8, "max_new_tokens": 4, "max_turns": 1,
                          "compare_champion": False, "temperature": 1.0, "top_p": 1.0}
    params = params_factory(evaluate=evaluate_cfg | {"samples": k})
    model, tok = _tiny_chat_model(params, "travel tools weather flights", seed=0)
    _ends_turn_with(model, tok, 0.2)
    monkeypatch.setattr(models, "load_for_inference", lambda folder, *a, **k: (model, tok))  # the hook: in memory
    episodes = generation.generate("travel", 12, {"single": 0.5, "irrelevance": 0.5}, 0.0, seed=6)
    write_jsonl(params.path("splits") / "test.jsonl", [e.model_dump(mode="json") for e in episodes])
    reports, out_dir = params.path("reports"), params.path("reports") / "evaluate"
    decodings: list[rollout.Decoding] = []
    run_episodes = rollout.run_episodes
    monkeypatch.setattr(rollout, "run_episodes", lambda *a, **kw: decodings.append(a[5]) or run_episodes(*a, **kw))

    sampled = evaluate.run(params).metrics
    assert [d.sampling is not None for d in decodings] == [False, True]
    assert params.decoding.constrained and all(d.constrained and d.gated for d in decodings)
    rows = [json.loads(line) for line in (out_dir / "sft_samples.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == [e.id for e in episodes]
    assert all([s["rollout"]["episode_id"] for s in r["samples"]] == [f"{r['id']}#{i}" for i in range(k)]
               for r in rows)
    c = [r["successes"] for r in rows]
    assert sampled["sft.pass_at_1"] == sampled["sft.pass_hat_1"] == round(sum(c) / (k * len(c)), 4)
    assert sampled["sft.pass_at_3"] == round(sum(x > 0 for x in c) / len(c), 4)
    assert sampled["sft.pass_hat_3"] == round(sum(x == k for x in c) / len(c), 4)
    assert sampled["sft.pass_at_3"] > sampled["sft.pass_hat_3"]  # some episodes succeed only sometimes
    for pre in ("", "single_", "irrelevance_", "completion_"):
        at = [sampled[f"sft.{pre}pass_at_{j}"] for j in range(1, k + 1)]
        hat = [sampled[f"sft.{pre}pass_hat_{j}"] for j in range(1, k + 1)]
        assert 0 <= min(hat) and max(at) <= 1 and at == sorted(at) and hat == sorted(hat, reverse=True)
    assert sampled["sft.single_pass_at_3"] == 0.0  # random tokens never make the right call
    md = (reports / "evaluate.md").read_text()
    assert "## pass@j / pass^j: sft (k = 3 samples, success = exact)" in md and "3 sampled rollouts per episode" in md
    assert "| episodes | pass@1 | pass@2 | pass@3 | pass^1 | pass^2 | pass^3 |" in md
    assert f"| all | {100 * sampled['sft.pass_at_1']:.1f}% |" in md and "| all (task completed) |" in md
    page = (reports / "evaluate.html").read_text()
    assert "<h2>pass@j and pass^j against j (success = exact)</h2>" in page and page.count("data:image/png") == 3

    greedy = evaluate.run(params_factory(evaluate=evaluate_cfg | {"samples": 1})).metrics
    assert not any("pass_" in key or "sample" in key for key in greedy)
    assert greedy == {key: v for key, v in sampled.items() if key in greedy and "seconds" not in key} | {
        "sft.seconds": greedy["sft.seconds"]}  # the headline numbers come from the greedy pass either way
    assert "pass@" not in (reports / "evaluate.md").read_text() and not (out_dir / "pass_k.png").exists()


RESULTS = {"base": {"single_exact": 0.0, "unparsable": 0.5, "single_n": 4.0, "errors.no_call": 3.0,
                    "errors.unparsable": 2.0},
           "sft": {"single_exact": 0.75, "unparsable": 0.0, "single_n": 4.0, "errors.wrong_tool": 1.0}}


def test_html_report_is_self_contained_with_every_table_and_plot(tmp_path):
    reports, out_dir = tmp_path, tmp_path / "evaluate"
    out_dir.mkdir()
    (reports / "sft_loss.csv").write_text("step,loss\n1,2.0\n2,1.5\n3,1.0\n")
    (reports / "rl_reward.csv").write_text("step,reward,rewards/correctness/mean\n1,0.2,\n2,0.4,0.5\n")
    files = eval_report.write(RESULTS, reports / "evaluate.md", out_dir, ["a note"])
    page = (reports / "evaluate.html").read_text()
    assert page.count("data:image/png;base64,") == 3 and "src='http" not in page and "<link" not in page
    for cell in ("<td>single: exact call</td><td>0.0%</td><td>75.0%</td>", "<h2>Error classes (episodes)</h2>",
                 "<td>no_call</td><td>3</td><td>0</td>", "<li>a note</li>", "Training curves"):
        assert cell in page
    assert str(out_dir / "training_curves.png") in files
    assert "Reward model loss and accuracy: no curve" in page  # the one CSV missing
    assert "- a note" in (reports / "evaluate.md").read_text()


def test_missing_training_curves_are_a_note_not_an_error(tmp_path):
    (tmp_path / "rl_reward.csv").write_text("step,reward\n")  # header only: the stage logged nothing
    curves, notes = eval_report.read_curves(tmp_path)
    assert curves == {} and len(notes) == 3 and any("is empty" in n for n in notes)
    files = eval_report.write(RESULTS, tmp_path / "evaluate.md", tmp_path)
    assert not (tmp_path / "training_curves.png").exists() and str(tmp_path / "training_curves.png") not in files
    assert "SFT loss: no curve" in (tmp_path / "evaluate.md").read_text()


def test_error_chart_stacks_classes_per_model(tmp_path, monkeypatch):
    import matplotlib.axes

    bars = []
    real = matplotlib.axes.Axes.bar
    monkeypatch.setattr(matplotlib.axes.Axes, "bar", lambda ax, x, h, *a, **k: bars.append((x, h, k)) or real(
        ax, x, h, *a, **k))
    eval_report._plot_errors(RESULTS, tmp_path / "errors.png")
    assert (tmp_path / "errors.png").stat().st_size > 0
    assert [(list(x), k["label"], k["bottom"]) for x, _, k in bars] == [
        (["base", "sft"], "no_call", [0.0, 0.0]), (["base", "sft"], "unparsable", [3.0, 0.0]),
        (["base", "sft"], "wrong_tool", [5.0, 0.0])]  # one bar per model, each class on top of the last


def test_registered_champion_is_a_fourth_column(params_factory, migrated_db, tmp_path, monkeypatch):
    """A real SQLite registry: no champion -> a note; after register promotes the tiny model -> column `champion`."""
    import shutil

    from components import register, tracking
    from components.data.fileio import write_jsonl

    for var in ("MLFLOW_TRACKING_URI", tracking.PARENT_ENV, "TOOLTUNE_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "false")
    shutil.copy(migrated_db, tmp_path / "mlflow.db")
    params = params_factory(evaluate={"models": ["sft"], "batch_size": 4, "max_new_tokens": 4, "max_turns": 1,
                                      "compare_champion": True})
    model, tok = _tiny_chat_model(params, "travel tools weather flights", seed=0)
    models.save(model, tok, params.path("sft_model"), {"spec": "tiny"})
    write_jsonl(params.path("splits") / "test.jsonl",
                [e.model_dump(mode="json") for e in generation.generate("travel", 4, SHARES, 0.0, seed=6)])

    first = evaluate.run(params)
    md = (params.path("reports") / "evaluate.md").read_text()
    assert "No `champion` version of" in md and "| metric | sft |" in md and "champion.exact" not in first.metrics

    (params.path("metrics")).mkdir(parents=True, exist_ok=True)
    (params.path("metrics") / "evaluate.json").write_text(json.dumps({"base.single_exact": 0.0,
                                                                      "sft.single_exact": 0.5}))
    assert register.run(params).details["alias"] == "champion"
    second = evaluate.run(params)
    md = (params.path("reports") / "evaluate.md").read_text()
    assert "| metric | sft | champion |" in md and f"{params.register_.model_name} v1" in md
    assert second.metrics["champion.exact"] == second.metrics["sft.exact"]  # same weights, same greedy rollouts
    assert second.metrics["champion.version"] == 1.0 and "champion.version" not in first.metrics  # which one measured
    # the registered copy of sft's files keys like sft: both read back from the first run's cache entry
    assert (first.metrics["sft.cached"], second.metrics["sft.cached"], second.metrics["champion.cached"]) == (0, 1, 1)
    assert second.metrics["paired.sft_vs_champion.exact_p"] == 1.0  # no episode tells them apart
    assert second.metrics["paired.sft_vs_champion.exact_delta"] == 0.0 and "paired.sft_vs_champion" not in str(
        first.metrics)
    n = int(second.metrics["sft.n"])  # the test split's episodes
    assert f"| sft vs champion | all | {n} | 0 | 0 | +0.0 pts | 1.000 | no significant difference |" in md
    assert second.metrics["sft.exact_low"] <= second.metrics["sft.exact"] <= second.metrics["sft.exact_high"]
    assert (params.path("reports") / "evaluate" / "champion_rollouts.jsonl").is_file()


def _verdicts(pattern, exact):
    """Verdicts as `verdict.judge` gives them (the fields `summarize` and the paired test read)."""
    return [Verdict(f"{pattern}-{i}", pattern, e, e, True, False, () if e else ("wrong_tool",), e, 1)
            for i, e in enumerate(exact)]


def test_rates_carry_wilson_intervals_and_n_in_metrics_and_report(tmp_path):
    base = _verdicts("single", [True] * 3 + [False] * 9) + _verdicts("chain", [False] * 8 + [True] * 2)
    sft = _verdicts("single", [True] * 11 + [False]) + _verdicts("chain", [True] * 8 + [False] * 2)
    results = {"base": evaluate.summarize(base), "sft": evaluate.summarize(sft)}
    m = results["sft"]
    assert (m["chain_exact"], m["chain_exact_low"], m["chain_exact_high"]) == (0.8, 0.4902, 0.9433)  # 8/10
    assert (m["n"], m["chain_n"], m["single_first_n"]) == (22.0, 10.0, 12.0)
    assert all(f"{k}_low" in m and f"{k}_high" in m for k in ("exact", "unparsable", "single_exact", "single_tool",
                                                               "chain_exact", "chain_completion"))
    assert all(m[f"{k}_low"] <= m[k] <= m[f"{k}_high"] for k in m if f"{k}_low" in m)
    eval_report.write(results, tmp_path / "evaluate.md", tmp_path)
    md = (tmp_path / "evaluate.md").read_text()
    assert "| metric | base | sft | n |" in md
    assert "| chain: exact | 20.0% [5.7–51.0] | 80.0% [49.0–94.3] | 10 |" in md
    assert "| all: exact | 22.7% [10.1–43.4] | 86.4% [66.7–95.2] | 22 |" in md and "Wilson score interval" in md
    page = (tmp_path / "evaluate.html").read_text()
    assert "<td>chain: exact</td><td>20.0% [5.7–51.0]</td><td>80.0% [49.0–94.3]</td><td>10</td>" in page


def test_paired_comparisons_table_and_verdicts(tmp_path):
    from components.evaluation import stats

    base = _verdicts("single", [True] * 3 + [False] * 9) + _verdicts("chain", [False] * 8 + [True] * 2)
    sft = _verdicts("single", [True] * 11 + [False]) + _verdicts("chain", [True] * 8 + [False] * 2)
    comparisons = stats.compare("sft", "base", sft, base, alpha=0.05)
    results = {"base": evaluate.summarize(base), "sft": evaluate.summarize(sft)}
    eval_report.write(results, tmp_path / "evaluate.md", tmp_path, [], comparisons)
    md = (tmp_path / "evaluate.md").read_text()
    assert "## Paired comparisons: exact, same episodes (exact McNemar test, alpha = 0.05)" in md
    for row in ("| sft vs base | all | 22 | 16 | 2 | +63.6 pts | 0.001 | better |",  # 2*sum C(18,0..2)/2^18
                "| sft vs base | chain | 10 | 8 | 2 | +60.0 pts | 0.109 | no significant difference |",  # 2*56/1024
                "| sft vs base | single | 12 | 8 | 0 | +66.7 pts | 0.008 | better |"):  # 2/256
        assert row in md
    page = (tmp_path / "evaluate.html").read_text()
    assert "<td>sft vs base</td><td>chain</td><td>10</td><td>8</td><td>2</td>" in page
    assert stats.metrics(comparisons)["paired.sft_vs_base.chain_exact_p"] == 0.1094


def test_pairs_that_matter():
    assert evaluate.pairs(["base", "sft", "rl"], ["base", "sft", "rl", "champion"]) == [
        ("sft", "base"), ("rl", "sft"), ("rl", "champion")]
    assert evaluate.pairs(["base", "sft"], ["base", "sft"]) == [("sft", "base")]
    assert evaluate.pairs(["sft"], ["sft", "champion"]) == [("sft", "champion")]  # register's candidate: sft
    assert evaluate.pairs(["base"], ["base", "champion"]) == []  # no candidate evaluated


def test_failed_tool_calls_are_counted_per_model_and_shown_in_the_report(tmp_path, params_factory):
    """A model that writes the year-9999 weather call (the tool raises OverflowError) has failed calls in its metrics,
    and the report shows them beside a model without any."""

    from components.toolcalls.parse import CLOSE, END, OPEN
    from tests.unit.test_sim_failures import WEATHER, _Scripted

    bad = {"name": "get_weather", "arguments": WEATHER | {"start_date": "9999-12-31"}}
    model = _Scripted([f"{OPEN}{json.dumps(bad)}{CLOSE}{END}", f"Sorry, no forecast.{END}"])
    domain = domains.get("travel")
    episodes = generation.generate("travel", 5, {"single": 1.0}, 0.0, seed=4)
    broken = rollout.run_episodes(model, None, episodes[:3], domain, params_factory().base.system_prompt,
                                  rollout.Decoding(batch_size=4, max_new_tokens=8, max_turns=3), decode=model.generate)
    rows = [rollout.judge(ro, ep) for ro, ep in zip(broken, episodes)]
    rows += [rollout.judge(gold_rollout(ep, domain), ep) for ep in episodes[3:]]
    assert [r.failed_calls for r in rows] == [1, 1, 1, 0, 0]

    results = {"base": evaluate.summarize(rows),
               "sft": evaluate.summarize([rollout.judge(gold_rollout(ep, domain), ep) for ep in episodes])}

    assert (results["base"]["failed_calls"], results["base"]["any_failed_call"]) == (3.0, 0.6)
    assert results["base"]["any_failed_call_low"] < 0.6 < results["base"]["any_failed_call_high"]
    assert (results["sft"]["failed_calls"], results["sft"]["any_failed_call"]) == (0.0, 0.0)
    eval_report.write(results, tmp_path / "evaluate.md", tmp_path)
    md = (tmp_path / "evaluate.md").read_text()
    assert "| episodes with a failed tool call | 60.0% [23.1–88.2] | 0.0% [0.0–43.5] | 5 |" in md
    assert "| failed tool calls (calls) | 3 | 0 |  |" in md
    page = (tmp_path / "evaluate.html").read_text()
    assert "<td>failed tool calls (calls)</td><td>3</td><td>0</td>" in page


def test_single_step_verdicts_have_no_failed_call_metrics():
    """Without a simulator no call is executed: no `failed_calls` metric, no report row (not a 0 that means 'none')."""
    rows = [Verdict.from_row({"id": "a", "pattern": "single", "exact": True, "first_exact": True, "tool_ok": True,
                              "unparsable": False, "errors": [], "completion": None})]
    metrics = evaluate.summarize(rows)
    assert "failed_calls" not in metrics and "any_failed_call" not in metrics
    assert not any("failed tool call" in row[0] for row in eval_report.tables({"byo": metrics})[0][2])


def test_handwritten_set_is_a_column_of_its_own_with_paired_tests(params_factory, monkeypatch):
    """evaluate.handwritten as a path: each model evaluated on it too (loaded once for both sets), `handwritten.`
    metrics with Wilson intervals, its own tables, paired McNemar tests and rollouts file."""

    from components.data.fileio import write_jsonl

    params = params_factory(evaluate={"models": ["base", "sft"], "batch_size": 8, "max_new_tokens": 4, "max_turns": 1,
                                      "compare_champion": False, "reuse": False, "handwritten": "hand.jsonl"})
    for key, seed in (("base", 0), ("sft_model", 1)):
        model, tok = _tiny_chat_model(params, "travel tools weather flights", seed=seed)
        models.save(model, tok, params.path(key), {"spec": "tiny"})
    write_jsonl(params.path("splits") / "test.jsonl",
                [e.model_dump(mode="json") for e in generation.generate("travel", 4, SHARES, 0.0, seed=6)])
    held = [e for e in generation.generate("travel", 40, SHARES, 0.5, seed=9) if e.split == "test"][:3]  # held-out side
    write_jsonl(params.path("splits").parent.parent / "hand.jsonl", [e.model_dump(mode="json") for e in held])
    loads, real = [], models.load_for_inference
    monkeypatch.setattr(models, "load_for_inference", lambda folder, *a: loads.append(folder) or real(folder, *a))

    metrics = evaluate.run(params).metrics
    assert len(loads) == 2  # one load per model for both sets
    for m in ("base", "sft"):
        assert metrics[f"{m}.handwritten.n"] == 3.0 and metrics[f"{m}.n"] == 5.0
        low, rate, high = (metrics[f"{m}.handwritten.exact{s}"] for s in ("_low", "", "_high"))
        assert 0 <= low <= rate <= high <= 1 and high - low > 0.5  # 3 episodes: a wide interval
        pattern = held[0].pattern
        assert f"{m}.handwritten.{pattern}_exact_low" in metrics and f"{m}.handwritten.{pattern}_n" in metrics
    assert "paired.sft_vs_base.handwritten.exact_p" in metrics and "paired.sft_vs_base.exact_p" in metrics
    rows = (params.path("reports") / "evaluate" / "sft_handwritten_rollouts.jsonl").read_text().splitlines()
    assert [json.loads(r)["id"] for r in rows] == [e.id for e in held]
    md = (params.path("reports") / "evaluate.md").read_text()
    assert "## Hand-written test set (requests written by hand, not by the generators)" in md
    assert "## Paired comparisons on the hand-written set: exact, same episodes" in md
    hand_table = md.split("## Hand-written test set")[1].split("##")[0]
    hand = {m: {k.removeprefix(f"{m}.handwritten."): v for k, v in metrics.items() if k.startswith(f"{m}.handwritten.")}
            for m in ("base", "sft")}
    cells = " | ".join(eval_report._rate(hand[m], "exact") for m in ("base", "sft"))
    assert f"| all: exact | {cells} | 3 |" in hand_table  # its own rates and n, not the test split's
    assert "Hand-written test set (3 episodes" in md and "hand.jsonl" in md


def test_handwritten_builtin_set_none_and_bad_paths(params_factory, tmp_path):
    import pytest

    from components.data.episode import DataError

    params = params_factory(evaluate={"handwritten": "builtin"})
    episodes, note = evaluate.handwritten_set(params, domains.get("travel"))
    assert len(episodes) >= 60 and {e.source for e in episodes} == {"handwritten"}
    assert f"({len(episodes)} episodes, the built-in travel set)" in note
    assert len(evaluate.handwritten_set(params, domains.get("finance"))[0]) >= 60
    assert evaluate.handwritten_set(params_factory(evaluate={"handwritten": None}), domains.get("travel")) == ([], None)
    own = domains.Domain("clinic", lambda: [])  # a bring-your-own domain has no built-in set
    assert evaluate.handwritten_set(params, own) == (
        [], "evaluate.handwritten is builtin: the domain clinic has no hand-written set.")
    with pytest.raises(DataError, match="missing.jsonl"):
        evaluate.handwritten_set(params_factory(evaluate={"handwritten": "missing.jsonl"}), domains.get("travel"))
    with pytest.raises(DataError, match="path_outside_workdir"):
        evaluate.handwritten_set(params_factory(evaluate={"handwritten": "../x.jsonl"}), domains.get("travel"))
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(DataError, match="empty.jsonl: rule 'non_empty'"):
        evaluate.handwritten_set(params_factory(evaluate={"handwritten": "empty.jsonl"}), domains.get("travel"))


def test_decoding_compare_adds_the_other_decoding_as_a_paired_column(params_factory):
    """`decoding.compare: [sft]`: sft is also evaluated under the tool-call grammar, as column `sft_constrained`
    beside `sft` with its paired test; its calls name only offered tools and it is its own cache entry."""

    from components.data.fileio import write_jsonl

    params = params_factory(evaluate={"models": ["sft"], "batch_size": 4, "max_new_tokens": 24, "max_turns": 1,
                                      "compare_champion": False},
                            decoding={"constrained": False, "compare": ["sft"]})
    model, tok = _tiny_chat_model(params, "travel tools weather flights", seed=0)
    models.save(model, tok, params.path("sft_model"), {"spec": "tiny"})
    episodes = generation.generate("travel", 6, SHARES, 0.0, seed=6)
    write_jsonl(params.path("splits") / "test.jsonl", [e.model_dump(mode="json") for e in episodes])
    result = evaluate.run(params)
    md = (params.path("reports") / "evaluate.md").read_text()
    assert "| metric | sft | sft_constrained |" in md
    assert "paired.sft_constrained_vs_sft.exact_p" in result.metrics
    assert result.metrics["sft_constrained.cached"] == 0.0  # its own cache entry, not sft's
    assert not any(k.startswith(("sft_constrained.errors.hallucinated_tool", "sft_constrained.errors.unknown_argument",
                                 "sft_constrained.errors.wrong_type")) for k in result.metrics)
    offered = {e.id: {t["function"]["name"] for t in e.tool_dicts()} for e in episodes}
    rows = [json.loads(line) for line in
            (params.path("reports") / "evaluate" / "sft_constrained_rollouts.jsonl").read_text().splitlines()]
    calls = [(r["rollout"]["episode_id"], c["name"]) for r in rows for step in r["rollout"]["steps"] for c in step]
    assert all(name in offered[ep] for ep, name in calls)
