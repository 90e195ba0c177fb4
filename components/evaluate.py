"""Stage `evaluate`: base, SFT and RL models side by side on the held-out test split, in the simulator.

Reads: `paths.splits/test.jsonl`, the model folders named in `evaluate.models`, params `evaluate`, `paths.eval_cache`.
With `evaluate.compare_champion`, also the version holding the `champion` alias of `register.model_name` in the
MLflow registry (`tracking`), downloaded to a temporary folder, as a fourth column `champion`; none yet: a note.
Writes: `paths.reports/evaluate.md` (tables), `paths.reports/evaluate.html` (the same tables and the plots inlined,
one self-contained file), `paths.reports/evaluate/` (accuracy.csv for `dvc plots`, accuracy.png, errors.png,
training_curves.png from the training stages' CSVs in `paths.reports`, <model>_rollouts.jsonl; with
`evaluate.samples` > 1 also pass_k.png and <model>_samples.jsonl); metrics `<model>.<metric>` (metrics/evaluate.json;
`champion.version`: the registry version of the champion column);
new entries of `paths.eval_cache`.
Run: `python -m components.evaluate`.

Metrics per model: `single_exact` (first call right: tool and every argument), `single_tool` (right tool),
`irrelevance_no_call`, `unparsable` (share of episodes), `failed_calls` (tool calls the simulator answered with an
error: a rejected or unknown argument, or a tool that broke on a model-made value, `Rollout.failed_calls`) and
`any_failed_call` (share of episodes with at least one), and per pattern `<pattern>_exact` (every step right
and then a final answer) and `<pattern>_completion` (goal state reached, a final answer given, and the answers state
the facts of the tool results the task asks for: `expected.outputs`, as tau-bench checks them); all greedy.
Every rate also has its 95 % Wilson score interval `<rate>_low` / `<rate>_high` and its denominator (`n`,
`<pattern>_n`, `single_first_n`). Models are also compared on the same episodes (sft vs base, rl vs sft, the register
candidate vs the champion: `pairs`) by an exact McNemar test on `exact`, overall and per pattern, at level
`evaluate.alpha`: metrics `paired.<a>_vs_<b>.<metric>_p` and `..._delta` (rate of a - rate of b), a table in the
report (components/evaluation/stats.py). `decoding.constrained` decodes every column under the tool-call grammar;
the models of `decoding.compare` are also evaluated the other way, as columns `<model>_constrained` (or `_free`),
each paired against its model.
With `evaluate.samples` = k > 1, each episode is also rolled out k times by sampling (seeded by `project.seed`) for
`pass_at_<j>` / `pass_hat_<j>` (pass@j / pass^j, j = 1..k, see components/evaluation/passk.py), overall and per pattern. That is
a separate pass: the greedy metrics, which `register` gates on, stay as they are with k = 1.
A domain without a simulator (a bring-your-own tool catalog) is scored on single-step episodes instead
(components/evaluation/single_step.py): the same metric names over steps, no `_completion`, no samples, and a note in the report.
With `evaluate.handwritten` (builtin: the built-in domain's set from components/domains/handwritten.py; or an
episodes file), every model is also evaluated on the hand-written set (greedy only; the model loaded once for both):
metrics `<model>.handwritten.<metric>`, paired tests `paired.<a>_vs_<b>.handwritten.<metric>_*`, its own tables,
rollouts in `<model>_handwritten_rollouts.jsonl`.
With `evaluate.reuse`, each (model, episode set) evaluation is kept in `paths.eval_cache` under a hash of the model's
files, the episodes, the output-changing settings and the evaluation code (components/evaluation/cache.py) and read
back on a later run instead of recomputed: metric `<model>.cached` (`<model>.handwritten.cached`) is 1.0 then, and
the report says which columns came from the cache.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from components import domains, tracking
from components.training import models
from components.evaluation import bfcl, cache, passk, rollout, single_step, stats
from components.evaluation.verdict import Verdict
from components.domains import handwritten
from components.evaluation.report import HANDWRITTEN  # the hand-written set's metric prefix: `sft.handwritten.exact`
from components.config import BUILTIN_DOMAINS, Params
from components.data.episode import Episode, read_episodes
from components.data.inputs import workdir_path
from components.data.fileio import write_jsonl
from components.result import StageResult
from components.tracking import gate

MODEL_PATHS = {"base": "base", "sft": "sft_model", "rl": "rl_model"}


def summarize(verdicts: list[Verdict]) -> dict[str, float]:
    """Headline metrics of one model from its per-episode verdicts; each rate with its 95 % Wilson interval
    (`<rate>_low`, `<rate>_high`) and its denominator (`n`, `<pattern>_n`, `single_first_n`); the error classes'
    counts (`errors.<class>`) and, where the call gate's checks made first requests' turns text, their counts
    (`refused.<gate|name|value>`, of them irrelevance episodes: `refused.<check>.no_call_wanted`)."""
    by = defaultdict(list)
    for v in verdicts:
        by[v.pattern].append(v)
    out: dict[str, float] = {"n": float(len(verdicts))}
    _rate(out, "unparsable", [v.unparsable for v in verdicts])
    _rate(out, "exact", [v.exact for v in verdicts])
    for pattern, items in sorted(by.items()):
        _rate(out, f"{pattern}_exact", [v.exact for v in items])
        if items[0].completion is not None:  # None: not measured (no simulator)
            _rate(out, f"{pattern}_completion", [v.completion for v in items])
        out[f"{pattern}_n"] = float(len(items))
    if by.get("single"):
        firsts = [v for v in by["single"] if v.first_exact is not None]
        _rate(out, "single_exact", [v.first_exact for v in firsts])
        _rate(out, "single_tool", [v.tool_ok for v in firsts])
        out["single_first_n"] = float(len(firsts))
    if by.get("irrelevance"):
        _rate(out, "irrelevance_no_call", [v.exact for v in by["irrelevance"]])
    failed = [v.failed_calls for v in verdicts if v.failed_calls is not None]  # none: nothing executed (single steps)
    if failed:
        out["failed_calls"] = float(sum(failed))
        _rate(out, "any_failed_call", [n > 0 for n in failed])
    for cls, n in Counter(e for v in verdicts for e in v.errors).items():
        out[f"errors.{cls}"] = float(n)
    for check, n in Counter(v.refused_by for v in verdicts if v.refused_by).items():  # gate | name | value
        out[f"refused.{check}"] = float(n)
        out[f"refused.{check}.no_call_wanted"] = float(sum(v.refused_by == check for v in by["irrelevance"]))
    return out


def _rate(out: dict[str, float], key: str, flags: list[Any]) -> None:
    """Set `key` to the share of true `flags` and `key_low` / `key_high` to its 95 % Wilson interval."""
    hits = sum(map(bool, flags))
    out[key] = round(hits / len(flags), 4) if flags else 0.0
    out[f"{key}_low"], out[f"{key}_high"] = (round(x, 4) for x in stats.wilson(hits, len(flags)))


Scored = tuple[dict[str, float], list[Verdict]]  # a model's metrics and its per-episode verdicts


@dataclass(frozen=True)
class EpisodeSet:
    """Episodes every model is evaluated on: the test split (`prefix` "") or the hand-written set (`HANDWRITTEN`)."""

    prefix: str
    episodes: list[Episode]

    def file(self, name: str, kind: str = "rollouts") -> str:
        """The file name of model `name`'s rollouts (or samples) on this set in `paths.reports/evaluate/`."""
        return f"{name}_{self.prefix.replace('.', '_')}{kind}.jsonl"


def evaluate_model(name: str, params: Params, domain: domains.Domain, sets: list[EpisodeSet], out_dir: Path,
                   folder: Path | None = None, constrained: bool | None = None) -> dict[str, Scored]:
    """Roll out and score one model (from `folder`, default its `paths` entry) on each set in `domain` (the stage's,
    `domains.of(params)`, resolved once); writes its rollouts.

    The model is loaded once, and only if a set is not in the evaluation cache (`evaluate.reuse`,
    components/evaluation/cache.py). Returns, per set prefix, the metrics (`cached`: 1.0 when read from the cache)
    and the verdict rows (for the paired tests against the other models).
    """
    folder = folder or params.path(MODEL_PATHS[name])
    constrained = params.decoding.constrained if constrained is None else constrained
    keys = _cache_keys(params, domain, folder, sets, constrained)
    loaded: list[Any] = []  # (model, tokenizer) once a set needs it
    out = {}
    for test_set, entry_key in zip(sets, keys):
        entry = cache.load(params.path("eval_cache"), entry_key, test_set.episodes) if entry_key else None
        hit = entry is not None
        if entry is None:
            loaded = loaded or list(models.load_for_inference(folder, params.base.dtype))
            label = f"{name}{' ' + test_set.prefix[:-1] if test_set.prefix else ''}"
            entry = compute(label, params, domain, loaded, test_set.episodes, sample=not test_set.prefix,
                            constrained=constrained)
            if entry_key:
                cache.store(params.path("eval_cache"), entry_key, entry, {"model": name, "folder": str(folder)})
        write_jsonl(out_dir / test_set.file(name), [v.row() for v in entry.rows])
        if entry.samples is not None:
            write_jsonl(out_dir / test_set.file(name, "samples"), entry.samples)
        out[test_set.prefix] = (entry.metrics | {"cached": float(hit)}, entry.rows)
    return out


def _cache_keys(params: Params, domain: domains.Domain, folder: Path, sets: list[EpisodeSet],
                constrained: bool) -> list[str | None]:
    """Each set's cache key for the model in `folder`; None for all when `evaluate.reuse` is off or the folder holds
    no weights (a model that is not on disk is not keyed)."""
    model = cache.model_hash(folder) if params.evaluate.reuse else None
    if model is None:
        return [None] * len(sets)
    cfg, settings = params.evaluate, cache.rollout_settings(params, domain, constrained)
    sampling = {"samples": cfg.samples, "temperature": cfg.temperature, "top_p": cfg.top_p,
                "seed": params.project.seed} if cfg.samples > 1 and domain.simulated else {}
    code = cache.code_hash()
    return [cache.key(model, cache.episodes_hash(s.episodes), settings | ({} if s.prefix else sampling), code)
            for s in sets]


def compute(label: str, params: Params, domain: domains.Domain, loaded: list[Any], episodes: list[Episode],
            sample: bool, constrained: bool = False) -> cache.Entry:
    """Evaluate the loaded (model, tokenizer) on `episodes`: greedy rollouts (or single steps without a simulator)
    scored, and with `sample` and `evaluate.samples` > 1 the k-sample pass too; `constrained`: decoded under the
    tool-call grammar (`decoding.constrained`)."""
    cfg, (model, tok) = params.evaluate, loaded
    start = time.time()
    if domain.simulated:
        rollouts = rollout.run_episodes(model, tok, episodes, domain, params.base.system_prompt,
                                        rollout.Decoding.evaluation(cfg, constrained=constrained),
                                        desc=f"evaluate {label}")
        rows = [rollout.judge(ro, ep) for ro, ep in zip(rollouts, episodes)]
    else:
        rows = single_step.evaluate(model, tok, episodes, params.base.system_prompt, cfg.batch_size,
                                    cfg.max_new_tokens, desc=f"evaluate {label} (single steps)",
                                    constrained=constrained)
    metrics = summarize(rows) | {"seconds": round(time.time() - start, 1)}
    if not (sample and cfg.samples > 1 and domain.simulated):
        return cache.Entry(metrics, rows)
    sampled, groups = evaluate_samples(label, params, domain, model, tok, episodes, constrained)
    return cache.Entry(metrics | sampled, rows, groups)


def evaluate_samples(name: str, params: Params, domain: domains.Domain, model: Any, tok: Any, episodes: list[Episode],
                     constrained: bool = False) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Roll every episode out `evaluate.samples` times by sampling and score each rollout like the greedy one
    (`constrained`: under the tool-call grammar, as the greedy column decodes).

    Returns the pass@j / pass^j metrics and `sample_seconds`, and one row per episode with its successes (`exact`)
    and its k verdicts (rollouts included): the <name>_samples.jsonl lines.
    """
    cfg, k = params.evaluate, params.evaluate.samples
    start = time.time()
    # distinct ids (run_episodes keys by id); an episode's copies share its prompt, so they batch together
    copies = [ep.model_copy(update={"id": f"{ep.id}#{i}"}) for ep in episodes for i in range(k)]
    sampling = rollout.Sampling(cfg.temperature, cfg.top_p, params.project.seed)
    rollouts = rollout.run_episodes(model, tok, copies, domain, params.base.system_prompt,
                                    rollout.Decoding.evaluation(cfg, sampling=sampling, constrained=constrained),
                                    desc=f"sample {name}")
    groups = [[rollout.judge(ro, ep) for ro in rollouts[i * k:(i + 1) * k]] for i, ep in enumerate(episodes)]
    lines = [{"id": ep.id, "pattern": ep.pattern, "successes": sum(v.exact for v in g), "samples": [v.row() for v in g]}
             for ep, g in zip(episodes, groups)]
    return passk.summarize(groups) | {"sample_seconds": round(time.time() - start, 1)}, lines


def evaluate_champion(params: Params, domain: domains.Domain, sets: list[EpisodeSet],
                      out_dir: Path) -> tuple[dict[str, Scored] | None, str, str | None]:
    """The champion's metrics and verdict rows per set on the same episodes (None when the registry has none yet), a
    report note, and the registry version measured (None: none)."""
    name = params.register_.model_name
    with tempfile.TemporaryDirectory(prefix="tooltune-champion-") as tmp:
        found = tracking.download_champion(params, Path(tmp))
        if found is None:
            return None, f"No `champion` version of {name} in the MLflow registry yet: no champion column.", None
        version, folder = found
        return (evaluate_model("champion", params, domain, sets, out_dir, folder),
                f"Column `champion`: {name} v{version} from the MLflow registry (alias `champion`).", str(version))


def handwritten_set(params: Params, domain: domains.Domain) -> tuple[list[Episode], str | None]:
    """The hand-written episodes of `evaluate.handwritten` and a report note (None: none wanted).

    "builtin": the built-in domain's fixed set (components/domains/handwritten.py; none for a domain without one);
    a path: an episodes JSONL file under the workdir.

    Raises:
        DataError: The file is missing, outside the workdir, malformed or holds no episode.
    """
    choice = params.evaluate.handwritten
    if choice is None:
        return [], None
    if choice == "builtin":
        if params.project.catalog is not None or domain.name not in BUILTIN_DOMAINS:
            return [], f"evaluate.handwritten is builtin: the domain {domain.name} has no hand-written set."
        episodes = handwritten.episodes(domain.name)
        where = f"the built-in {domain.name} set"
    else:
        path = workdir_path(params.project.workdir, choice, "evaluate.handwritten")
        episodes, where = read_episodes(path), str(path)  # an empty file: DataError (rule non_empty)
    if not episodes:
        return [], f"evaluate.handwritten is builtin: the domain {domain.name} has no hand-written set."
    return episodes, (f"Hand-written test set ({len(episodes)} episodes, {where}): requests written by hand, not by "
                      "the generators; metrics `<model>.handwritten.*`, its own tables.")


def _sampling_note(params: Params) -> str:
    """The report's note on how the pass@j / pass^j tables were measured."""
    cfg = params.evaluate
    return (f"pass@j / pass^j: {cfg.samples} sampled rollouts per episode (temperature {cfg.temperature}, top_p "
            f"{cfg.top_p}, seed {params.project.seed}), in a pass of their own: every other number comes from the "
            "greedy rollout. Success = `exact` (every step right, then an answer); rows `all (task completed)`: "
            "goal state reached and answered. With c successes in n samples, pass@j = 1 - C(n-c, j)/C(n, j) (at "
            "least one of j samples succeeds; Chen et al. 2021) and pass^j = C(c, j)/C(n, j) (all j succeed; "
            "tau-bench), averaged over episodes.")


def _notes(params: Params, domain: domains.Domain) -> list[str]:
    """How the models were evaluated, for the report: single steps without a simulator, the sampling settings."""
    notes = [] if domain.simulated else [single_step.NOTE.format(domain=domain.name)]
    if params.evaluate.samples > 1:
        notes.append(_sampling_note(params) if domain.simulated
                     else "evaluate.samples > 1 is ignored: sampled multi-step rollouts need a simulator.")
    return notes


def pairs(models: list[str], evaluated: list[str]) -> list[tuple[str, str]]:
    """The comparisons that matter, (A, B) = "A against B": each model of `evaluate.models` against the one listed
    before it (sft vs base, rl vs sft), and the candidate `register` would register (rl when evaluated, else sft)
    against the registry's champion when that was evaluated."""
    out = list(zip(models[1:], models[:-1]))
    candidate = "rl" if "rl" in models else "sft"
    if "champion" in evaluated and candidate in evaluated:
        out.append((candidate, "champion"))
    return out


def episode_sets(params: Params, domain: domains.Domain) -> tuple[list[EpisodeSet], str | None]:
    """The sets every model is evaluated on: the test split, and the hand-written set when there is one (with its
    report note, see `handwritten_set`)."""
    hand, note = handwritten_set(params, domain)
    test = EpisodeSet("", read_episodes(params.path("splits") / "test.jsonl"))
    return [test] + ([EpisodeSet(HANDWRITTEN, hand)] if hand else []), note


def other_decoding(params: Params) -> list[tuple[str, str]]:
    """(model, column) of `decoding.compare`: each listed model of `evaluate.models` decoded the other way, as
    `<model>_constrained` (plain columns unconstrained) or `<model>_free`."""
    suffix = "free" if params.decoding.constrained else "constrained"
    return [(m, f"{m}_{suffix}") for m in params.decoding.compare if m in params.evaluate.models]


def run(params: Params) -> StageResult:
    from components.evaluation import report as eval_report

    domain = domains.of(params)
    bfcl_found = bfcl.discover(bfcl.data_folder(params)) if params.bfcl.data else None  # bad data: fail first
    sets, note = episode_sets(params, domain)
    reports = params.path("reports")
    out_dir = reports / "evaluate"
    out_dir.mkdir(parents=True, exist_ok=True)
    scored = {name: evaluate_model(name, params, domain, sets, out_dir) for name in params.evaluate.models}
    for name, variant in other_decoding(params):
        scored[variant] = evaluate_model(variant, params, domain, sets, out_dir, params.path(MODEL_PATHS[name]),
                                         constrained=not params.decoding.constrained)
    notes = _notes(params, domain) + ([note] if note else [])
    champion_version = None
    if params.evaluate.compare_champion:
        champion, note, champion_version = evaluate_champion(params, domain, sets, out_dir)
        notes.append(note)
        if champion is not None:
            scored["champion"] = champion
    # one flat dict per model: the test split's metrics and the hand-written set's under `handwritten.`
    results = {m: {f"{prefix}{k}": v for prefix, (metrics, _) in by_set.items() for k, v in metrics.items()}
               for m, by_set in scored.items()}
    compared = pairs(params.evaluate.models, list(scored)) + [(v, m) for m, v in other_decoding(params)]
    comparisons = [_prefixed(c, s.prefix) for a, b in compared for s in sets
                   for c in stats.compare(a, b, scored[a][s.prefix][1], scored[b][s.prefix][1],
                                          params.evaluate.alpha)]
    notes += _cache_note(params, results)
    if bfcl_found:
        notes.append(_bfcl_column(params, bfcl_found, results, out_dir))
    files = eval_report.write(results, reports / "evaluate.md", out_dir, notes, comparisons)
    metrics = {f"{m}.{k}": v for m, res in results.items() for k, v in res.items()} | stats.metrics(comparisons)
    if champion_version is not None:  # which registry version the champion column measured: register's paired gate
        metrics[gate.VERSION_KEY] = float(champion_version)  # checks it is still the champion when it decides
    return StageResult(stage="evaluate", outputs={"report": str(reports / "evaluate.md"),
                                                  "html": str(reports / "evaluate.html"), "dir": str(out_dir)},
                       metrics=metrics, reports=[str(reports / "evaluate.md"), *files])


def _prefixed(comparison: stats.Comparison, prefix: str) -> stats.Comparison:
    """A comparison on the hand-written set named `handwritten.<metric>` (its own table and metric names)."""
    return replace(comparison, metric=prefix + comparison.metric) if prefix else comparison


def _cache_note(params: Params, results: dict[str, dict[str, float]]) -> list[str]:
    """The report's note on which columns were read from the evaluation cache ([] for none)."""
    reused = [f"{m} ({'hand-written set' if prefix else 'test split'})" for m, res in results.items()
              for prefix in ("", HANDWRITTEN) if res.get(f"{prefix}cached")]
    if not reused:
        return []
    return [f"Read from the evaluation cache ({params.paths.eval_cache}), not recomputed: {', '.join(reused)}. The "
            "same weights, episodes, evaluation settings and evaluation code gave these numbers on an earlier run "
            "(`seconds`: that run's time); `evaluate.reuse: false` recomputes every column."]


def _bfcl_column(params: Params, found: list[bfcl.Category], results: dict[str, dict[str, float]],
                 out_dir: Path) -> str:
    """Each model of `evaluate.models` on the BFCL data of `bfcl.data` (`tooltune bfcl`'s path, no cache): metrics
    `<model>.bfcl.*` added to `results`, tables in `out_dir/bfcl/<model>/`; returns the report's note."""
    for name in params.evaluate.models:
        model, tok = models.load_for_inference(params.path(MODEL_PATHS[name]), params.base.dtype)
        scores, summary = bfcl.evaluate(model, tok, params, found, out_dir / "bfcl" / name, params.bfcl.limit)
        results[name] |= bfcl.metrics(scores, summary)
    shown = ", ".join(f"{m} {results[m].get('bfcl.non_live_ast', float('nan')):.1%}" for m in params.evaluate.models)
    return (f"BFCL ({params.bfcl.data}, {', '.join(c.name for c in found)}): non-live AST accuracy {shown}; "
            f"per category: metrics `<model>.bfcl.*`, tables in {out_dir / 'bfcl'}/<model>/bfcl.md.")


def main() -> None:
    from components.tracking import stage_main

    stage_main("evaluate")


if __name__ == "__main__":
    main()
