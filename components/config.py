"""Typed, frozen view of `params.yaml`, loaded once; unknown keys are rejected.

Reads: params.yaml (and, with a profile, its `profiles.<name>` preset merged over the values; then the
`key.path=value` overrides of `tooltune run/stage -S`, the syntax of `dvc exp run -S`).
Writes: nothing.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

BUILTIN_DOMAINS = ("travel", "finance")  # components.domains.get
GENERAL_DOMAIN = "general"  # the open-catalog domain with a generator of its own: components/domains/general/
GENERAL_PATTERNS = ("single", "parallel", "irrelevance")  # what its generator writes
PATTERNS = ("single", "parallel", "chain", "recovery", "irrelevance", "multi_turn")  # episode.Pattern
PairKind = Literal["hallucinated_tool", "wrong_tool", "wrong_type", "wrong_value", "missing_required_argument",
                   "unknown_argument", "unexpected_argument", "wrong_call_count", "redundant_call", "missing_step",
                   "wrong_order", "premature_stop", "no_call", "call_when_irrelevant"]  # components/training/pairs.py
PARAMS_FILE = Path("params.yaml")
PROFILE_ENV = "TOOLTUNE_PROFILE"


class ConfigError(ValueError):
    """params.yaml is missing, malformed or breaks a rule; the message names file and key."""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Project(_Frozen):
    name: str
    domain: str
    seed: int
    workdir: str
    catalog: str | None = Field(default=None, description="bring your own tools: a tool catalog file under workdir")

    @model_validator(mode="after")
    def _catalog(self) -> "Project":
        if self.catalog is not None and self.domain in (*BUILTIN_DOMAINS, GENERAL_DOMAIN):
            raise ValueError(f"project.catalog: {self.domain!r} is a built-in domain with its own tools; give your "
                             "catalog's domain another name")
        return self


class Paths(_Frozen):
    base: str
    raw: str
    splits: str
    sft_model: str
    reward_model: str
    rl_model: str
    metrics: str
    reports: str
    eval_cache: str = Field(description="evaluations kept for reuse, one folder per model/episodes/settings/code key")
    checkpoints: str = Field(description="training checkpoints, one folder per stage, deleted once its model is saved")


class TinyModel(_Frozen):
    vocab_size: int = Field(gt=256)
    hidden_size: int = Field(gt=0)
    intermediate_size: int = Field(gt=0)
    num_hidden_layers: int = Field(gt=0)
    num_attention_heads: int = Field(gt=0)
    num_key_value_heads: int = Field(gt=0)


class Base(_Frozen):
    model: str = Field(min_length=1)
    system_prompt: str | None = Field(
        default=None, description="the system turn of every episode; null: the domain's own "
                                  "(components.domains.system_prompt), filled in when params load")
    tiny: TinyModel
    dtype: Literal["auto", "float32", "bfloat16"] = Field(
        description="training precision: bfloat16 = bf16 mixed precision (and, under LoRA, the frozen base weights "
                    "in bf16); auto = bfloat16 on a bf16-capable GPU, float32 elsewhere (bf16 is ~300x slower on "
                    "CPU); saved models stay float32")
    quantization: Literal["4bit"] | None = Field(
        description="4bit: QLoRA, the frozen base in NF4 (bitsandbytes, CUDA only; LoRA adapters train); null: none")
    tools_format: Literal["compact", "json"] = Field(
        description="how the project's ChatML template lists the tools (components/toolcalls/render.py): compact = "
                    "one line per tool, names and parameter names; json = the Qwen/Hermes <tools> block, whole "
                    "schemas. A model keeping its own template renders tools its own way (json is refused)")


class Import(_Frozen):
    """One outside dataset appended to the synthetic episodes (components/data/importers/): a file (`path`) or a
    Hugging Face dataset (`dataset`: a Hub id or a local dataset folder, components/data/importers/hub.py)."""

    source: Literal["openai", "sharegpt", "hermes", "xlam", "glaive", "bfcl"]
    path: str | None = Field(default=None, min_length=1, description="a file under project.workdir")
    dataset: str | None = Field(default=None, min_length=1, description="a Hugging Face dataset id, or a folder under "
                                                                        "project.workdir (save_to_disk, or json / "
                                                                        "parquet files)")
    split: str | None = Field(default=None, min_length=1, description="dataset only: the split read (default train)")
    subset: str | None = Field(default=None, min_length=1, description="dataset only: its configuration name")
    domain: str = Field(min_length=1, description="the domain name its episodes are tagged with")
    answers: str | None = Field(default=None, description="bfcl only: the possible-answer file")
    heldout_fraction: float = Field(default=0.0, ge=0, le=1, description="share of its episodes kept for the test "
                                                                         "split (by a stable hash of the request); 1: the "
                                                                         "whole file is test data")
    skip_invalid: bool = Field(default=False, description="set bad records aside in <paths.raw>.rejected.jsonl "
                                                          "instead of failing the stage")

    @model_validator(mode="after")
    def _answers(self) -> "Import":
        if self.answers is not None and self.source != "bfcl":
            raise ValueError(f"ingest.imports: `answers` goes with source bfcl only, not {self.source}")
        if (self.path is None) == (self.dataset is None):
            raise ValueError(f"ingest.imports: give `path` (a file) or `dataset` (a Hugging Face dataset id or "
                             f"folder), one of them; got {'both' if self.path else 'neither'}")
        if self.path is not None and (self.split or self.subset):
            raise ValueError("ingest.imports: `split` and `subset` go with `dataset`, not `path`")
        return self


class IrrelevancePool(_Frozen):
    """The off-domain no-call episodes ingest adds to the project's domain (components/domains/offdomain.py)."""

    share: float = Field(ge=0, lt=1, description="share of the written episodes the pool's off-domain requests "
                                                 "make up (0: none, the file as without the pool)")
    removed_tool: float = Field(ge=0, le=1, description="catalog domains: share of the imported single-call "
                                                        "episodes that also get a twin whose needed tool is not "
                                                        "offered, answered without a call")
    builtin: bool = Field(description="also add the pool to a built-in domain (its generator already writes "
                                      "no-call episodes at `ingest.shares.irrelevance`)")
    removed_tool_builtin: float = Field(default=0.0, ge=0, le=1,
                                        description="built-in domains: share of the generated single-call training "
                                                    "episodes that also get a removed-tool twin (the test split "
                                                    "gets none, so it stays the one measured without them)")


class Ingest(_Frozen):
    source: Literal["synthetic", "none"]  # none: no generated episodes, only `imports`
    n_episodes: int = Field(gt=0)
    shares: dict[str, float]
    irrelevance_kinds: dict[Literal["chat", "nearmiss", "missing", "foreign"], float] = Field(
        description="the generator's irrelevance episodes: small talk, near misses, missing argument, and (general "
                    "domain only) foreign: a task for a function that is not offered, among other fields' tools")
    irrelevance_pool: IrrelevancePool
    heldout_fraction: float = Field(gt=0, lt=1)
    voice_twins: float = Field(default=0.0, ge=0, le=1,
                               description="catalog domains: share of the imported training episodes also written "
                                           "with their first request framed by the project's openers and closers "
                                           "(components/domains/voice.py)")
    aside_twins: float = Field(default=0.0, ge=0, le=1,
                               description="built-in domains: share of the generated single-call training episodes "
                                           "also written as a contrast pair (the request after a statement that asks "
                                           "for nothing, and that statement alone, answered without a call; "
                                           "components/domains/voice.py); the test split gets none")
    imports: list[Import] = Field(default_factory=list)
    workers: int = Field(default=0, ge=0, description="processes that draw the synthetic episodes (0: one per CPU "
                                                      "core); the episodes are the same for any number")

    @model_validator(mode="after")
    def _shares(self) -> "Ingest":
        unknown = set(self.shares) - set(PATTERNS)
        if unknown:
            raise ValueError(f"ingest.shares: unknown pattern(s) {sorted(unknown)}; known: {list(PATTERNS)}")
        if abs(sum(self.shares.values()) - 1.0) > 1e-6:
            raise ValueError(f"ingest.shares must sum to 1, got {sum(self.shares.values()):.3f}")
        kinds = self.irrelevance_kinds
        if any(v < 0 for v in kinds.values()) or abs(sum(kinds.values()) - 1.0) > 1e-6:
            raise ValueError(f"ingest.irrelevance_kinds must be shares >= 0 that sum to 1, got {dict(kinds)}")
        return self


class NoCall(_Frozen):
    """Rule `no_call_share`: each domain's share of episodes answered without a call."""

    warn_share: float = Field(ge=0, le=1, description="below this share: a warning with the number needed")
    fail_share: float = Field(ge=0, le=1, description="below this share: validate fails")

    @model_validator(mode="after")
    def _order(self) -> "NoCall":
        if self.fail_share > self.warn_share:
            raise ValueError(f"validate.no_call: fail_share {self.fail_share} > warn_share {self.warn_share}")
        return self


class General(_Frozen):
    """`project.domain: general`: the open-catalog generator (components/domains/general/). Its pattern mix is
    `ingest.shares` (single, parallel, irrelevance), its no-call kinds `ingest.irrelevance_kinds`."""

    multiple: float = Field(ge=0, le=1, description="share of single-call episodes that offer tools of the same "
                                                    "field beside the needed one (BFCL's multiple); the rest: simple")
    parallel_multiple: float = Field(ge=0, le=1, description="share of parallel episodes that call several "
                                                             "functions; the rest call one function several times")
    heldout_functions: float = Field(gt=0, lt=1, description="share of the functions held out: their episodes go "
                                                             "only to the test split, never offered in training")
    distractors: tuple[int, int] = Field(description="unrelated tools offered in every episode: min, max")
    siblings: tuple[int, int] = Field(description="same-field tools offered in multiple and near-miss episodes")
    parallel_calls: tuple[int, int] = Field(description="calls of a parallel episode of one function: min, max")
    optional_rate: float = Field(ge=0, le=1, description="chance that a request gives an optional argument")

    @field_validator("distractors", "siblings", "parallel_calls")
    @classmethod
    def _range(cls, value: tuple[int, int]) -> tuple[int, int]:
        if not 0 <= value[0] <= value[1] <= 8:
            raise ValueError(f"expected [min, max] with 0 <= min <= max <= 8, got {list(value)}")
        return value

    @model_validator(mode="after")
    def _parallel(self) -> "General":
        if self.parallel_calls[0] < 2:
            raise ValueError(f"general.parallel_calls: a parallel episode makes 2 calls or more, got "
                             f"{list(self.parallel_calls)}")
        return self


class Validate(_Frozen):
    max_tokens: int = Field(gt=0)
    min_pattern_share: float = Field(ge=0, le=1)
    min_tool_share: float = Field(ge=0, le=1)
    # patterns whose user texts may repeat across splits (canned small talk drawn from a few templates)
    leakage_exempt_patterns: list[Literal["single", "parallel", "chain", "recovery", "irrelevance", "multi_turn"]]
    no_call: NoCall




class ShortenRequests(_Frozen):
    share: float = Field(ge=0, le=1, description="share of the training pairs shortened (0: none); held-out never")
    rate: float = Field(ge=0, lt=1, description="each word's chance to go; the values the calls pass and the word "
                                                "before each stay")


class Build(_Frozen):
    val_size: int = Field(ge=0)
    test_size: dict[str, int]
    rl_prompts: int = Field(gt=0)
    drop_duplicates: bool = Field(description="drop exact duplicates (same tools, messages and expected steps) before "
                                              "splitting; they are counted either way (metric duplicate_episodes)")
    pair_kinds: list[PairKind] = Field(
        description="error classes of components/toolcalls to make reward-model pairs of (components/training/pairs.py)")
    pairs_per_class: int | None = Field(gt=0, description="training pairs per class, from the train split; null: every "
                                                          "train episode the class applies to")
    heldout_pairs_per_class: int | None = Field(gt=0, description="pairs per class from the val and test splits, on "
                                                                  "which the reward model's accuracy is measured")
    shorten_requests: ShortenRequests = Field(
        description="training pairs whose user turns lose words at random (components/training/pairs.py)")


class Lora(_Frozen):
    enabled: bool
    r: int = Field(gt=0)
    alpha: int = Field(gt=0)
    dropout: float = Field(ge=0, lt=1)
    target_modules: str
    layers: int | None = Field(gt=0, description="adapt only the top N decoder layers (no backward below them; "
                                                 "needs target_modules all-linear); null: every layer")


Schedule = Literal["constant", "cosine", "linear", "wsd"]  # sft.lr_schedule, rl.lr_schedule (sft.schedule_args)
COOLDOWN = ("linear decay to 0 over the last this many steps of lr_schedule wsd (warm-up, stable, decay); "
            "the other schedules take none")


def _check_schedule(section: str, cfg: Sft | Rl) -> None:
    """wsd needs a cool-down that fits after the warm-up; the other schedules must not be given one."""
    if cfg.lr_schedule != "wsd":
        if cfg.cooldown_steps:
            raise ValueError(f"{section}.cooldown_steps ({cfg.cooldown_steps}) is for lr_schedule wsd only "
                             f"(lr_schedule is {cfg.lr_schedule})")
    elif not 0 < cfg.cooldown_steps <= cfg.max_steps - cfg.warmup_steps:
        raise ValueError(f"{section}.lr_schedule wsd needs 0 < cooldown_steps <= max_steps - warmup_steps "
                         f"({cfg.max_steps} - {cfg.warmup_steps}); got {cfg.cooldown_steps}")


class Sft(_Frozen):
    max_steps: int = Field(gt=0)
    grad_accum: int = Field(ge=1, description="micro-batches of batch_size per optimizer step, per process: a step "
                                              "sees batch_size x grad_accum x processes examples")
    batch_size: int = Field(gt=0)
    learning_rate: float = Field(gt=0)
    warmup_steps: int = Field(ge=0)
    lr_schedule: Schedule = Field(
        default="constant", description="the learning rate after warm-up: constant (then the model at step N of a "
                                        "run is an N-step model, as bench/learning_curve.py needs), decaying to 0 at "
                                        "max_steps, or wsd (constant, then decaying over cooldown_steps)")
    cooldown_steps: int = Field(default=0, ge=0, description=COOLDOWN)
    save_steps: int = Field(ge=0, description="a resumable checkpoint every this many steps (0: none)")
    max_length: int = Field(gt=0)
    padding_free: bool
    share_prefix: bool
    sampling: Literal["random", "group_by_length"]
    pattern_weights: dict[str, float] | None = Field(
        default=None, description="multipliers on each pattern's share of the episodes a run draws "
                                  "(training.rows_needed); patterns not named keep 1; null: the data's own shares")
    decision_weight: float = Field(
        default=1.0, ge=1.0, description="loss weight of each assistant turn's first token (call or answer: the "
                                         "decision), relative to the other tokens; 1: plain token average")
    lora: Lora

    @field_validator("pattern_weights")
    @classmethod
    def _weights(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        return _pattern_weights(value)

    @model_validator(mode="after")
    def _schedule(self) -> "Sft":
        _check_schedule("sft", self)
        return self


def _pattern_weights(value: dict[str, float] | None) -> dict[str, float] | None:
    """Check `sft.pattern_weights` / `rl.pattern_weights`."""
    return _group_weights(value, PATTERNS, "pattern_weights", "pattern", "patterns")


def _group_weights(value: dict[str, float] | None, known: Sequence[str], field: str, group: str,
                   groups: str) -> dict[str, float] | None:
    """Check weights per group (a pattern, an error class): known groups, weights >= 0, not all 0 (a group not named
    keeps 1)."""
    if value is None:
        return None
    unknown = set(value) - set(known)
    if unknown:
        raise ValueError(f"{field}: unknown {groups} {sorted(unknown)} (known: {list(known)})")
    if any(w < 0 for w in value.values()) or all(value.get(g, 1.0) == 0 for g in known):
        raise ValueError(f"{field}: weights must be >= 0 and at least one {group}'s > 0")
    return value


ON_POLICY = "on_policy"  # the kind of the pairs the reward_model stage samples from the SFT model


class OnPolicy(_Frozen):
    episodes: int = Field(ge=0, description="training episodes the SFT model is sampled on for on-policy pairs (a "
                                            "success against a failure of the same request, by the scorer); 0: none")
    heldout_episodes: int = Field(ge=0, description="val and test episodes sampled so, for the held-out class "
                                                    "on_policy; 0: none")
    samples: int = Field(ge=2, description="attempts per episode (a pair needs a success and a failure)")


class RewardModel(_Frozen):
    start: Literal["base", "sft"] = Field(description="the model the reward model starts from, a new score head on "
                                                      "it: base (paths.base) or sft (paths.sft_model)")
    max_steps: int = Field(gt=0)
    grad_accum: int = Field(ge=1, description="micro-batches of batch_size per optimizer step, per process: a step "
                                              "sees batch_size x grad_accum x processes examples")
    save_steps: int = Field(ge=0, description="a resumable checkpoint every this many steps (0: none)")
    batch_size: int = Field(gt=0)
    learning_rate: float = Field(gt=0)
    max_length: int = Field(gt=0)
    share_prefix: bool | Literal["auto"] = Field(
        description="run the start a pair's two trajectories share once per pair (same loss and gradients, no "
                    "padding); auto: on without CUDA")
    balance_classes: bool = Field(description="draw the training pairs class by class in equal shares (times "
                                              "class_weights), whatever each class's number of pairs in the file")
    class_weights: dict[str, float] | None = Field(
        default=None, description="multipliers on each error class's share of the training pairs a run draws; classes "
                                  "not named keep 1; null: the shares as balance_classes leaves them")
    on_policy: OnPolicy
    lora: Lora

    @field_validator("class_weights")
    @classmethod
    def _weights(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        return _group_weights(value, (*get_args(PairKind), ON_POLICY), "class_weights", "class", "classes")


class RewardWeights(_Frozen):
    correctness: float = Field(ge=0)
    completion: float = Field(ge=0)
    efficiency: float = Field(ge=0)
    reward_model: float = Field(ge=0)


class Rl(_Frozen):
    algorithm: Literal["grpo", "gspo", "dr_grpo", "dapo", "rft", "more_sft"]
    max_steps: int = Field(gt=0)
    select_samples: int = Field(ge=0, description="sampled rollouts of the start model per candidate prompt before "
                                                  "training; prompts it solves in all or none are dropped (0: off)")
    pattern_weights: dict[str, float] | None = Field(
        default=None, description="multipliers on each pattern's chance to be drawn as an RL prompt; patterns not "
                                  "named keep 1; null: the data's own shares")
    save_steps: int = Field(ge=0, description="a resumable checkpoint every this many steps (0: none)")
    batch_size: int = Field(gt=0)
    num_generations: int = Field(gt=1)
    rft_references: bool = Field(description=(
        "rft: also fine-tune on the reference trajectory of each prompt none of its samples solved (STaR's "
        "rationalization), so prompts beyond the start model teach too"))
    learning_rate: float = Field(gt=0)
    lr_schedule: Schedule = Field(
        default="linear", description="the learning rate after warm-up, the same for every arm: decaying to 0 at "
                                      "max_steps (linear: TRL's GRPO default), constant, or wsd")
    warmup_steps: int = Field(default=0, ge=0)
    cooldown_steps: int = Field(default=0, ge=0, description=COOLDOWN)
    num_iterations: int = Field(default=1, gt=0, description=(
        "updates per batch of rollouts (TRL's mu); at 1 the policy has not moved when the loss is taken, so the "
        "importance ratio is 1: GSPO's gradient is GRPO's and no clipping (DAPO's clip-higher included) binds"))
    max_completion_length: int = Field(gt=0)
    max_tool_calling_iterations: int = Field(ge=0)
    rollout: Literal["trl", "engine"] = Field(
        description="trl: TRL's tool loop (environment_factory); engine: the evaluation's batched, "
                                   "prefix-cached engine through rollout_func, multi_turn episodes trained too "
                                   "(needs a simulator)")
    temperature: float = Field(gt=0)
    beta: float = Field(ge=0)
    reward_weights: RewardWeights
    lora: Lora

    @field_validator("pattern_weights")
    @classmethod
    def _weights(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        return _pattern_weights(value)

    @model_validator(mode="after")
    def _divisible(self) -> "Rl":
        if self.batch_size % self.num_generations:
            raise ValueError(f"rl.batch_size ({self.batch_size}) must be divisible by rl.num_generations "
                             f"({self.num_generations})")
        _check_schedule("rl", self)
        return self


class Evaluate(_Frozen):
    models: list[Literal["base", "sft", "rl"]]
    batch_size: int = Field(gt=0)
    max_new_tokens: int = Field(gt=0)
    max_turns: int = Field(gt=0)
    compare_champion: bool
    samples: int = Field(ge=1, description="k-sample evaluation (pass@k, pass^k); 1 = the greedy rollout only")
    temperature: float = Field(gt=0, description="sampling only (samples > 1)")
    top_p: float = Field(gt=0, le=1, description="sampling only (samples > 1)")
    alpha: float = Field(gt=0, lt=1, description="level of the paired (McNemar) tests: p < alpha is a difference")
    reuse: bool = Field(description="read an evaluation back from paths.eval_cache when model, episodes, settings "
                                    "and code are unchanged; false: recompute (and store) nothing")
    handwritten: str | None = Field(description="hand-written test set: builtin (the built-in domain's), null "
                                                "(none) or an episodes JSONL file under project.workdir")


class Bfcl(_Frozen):
    """`tooltune bfcl` (components/evaluation/bfcl.py) and the evaluate stage's optional BFCL column."""

    system_prompt: str = Field(min_length=1, description="a general prompt: BFCL's tools are not the domain's")
    batch_size: int = Field(gt=0)
    max_new_tokens: int = Field(gt=0)
    data: str | None = Field(description="a BFCL data folder (under workdir, or absolute); set: the evaluate stage "
                                         "adds a bfcl column (metrics `<model>.bfcl.*`); null: none")
    limit: int | None = Field(gt=0, description="the first N entries of each category; null: all")


class Decoding(_Frozen):
    """How every turn is decoded: evaluation, `tooltune bfcl`, serving and chat (components/evaluation/engine.py)."""

    constrained: bool = Field(description="mask each turn to the tool-call grammar of the tools offered in its "
                                          "prompt (components/evaluation/constrained.py); free text stays allowed")
    compare: list[str] = Field(description="models of evaluate.models also evaluated with the other decoding, as "
                                           "columns `<model>_constrained` (or `_free`), paired against the model")
    call_gate: bool = Field(description="sft and rl fit a linear probe on their model's middle layer that decides "
                                        "call / no call before a turn answering the user (components/training/"
                                        "gate.py); every decoding of that model follows it")
    call_gate_examples: int = Field(ge=2, description="training-split requests the probe is fit on (half no-call)")
    call_gate_layer: int | None = Field(ge=1, description="hidden state the probe reads: the output of decoder layer "
                                                          "N (null: the middle layer)")
    call_gate_l2: float = Field(gt=0, description="the probe's L2 penalty on standardised features")
    call_gate_no_call_recall: float | None = Field(
        gt=0, lt=1, description="move the probe's threshold until at least this share of the no-call requests it is "
                                "fit on is refused in 5-fold cross-validation (null: the class-balanced threshold)")
    call_gate_name_floor: float = Field(
        ge=0, lt=1, description="under constrained decoding, a gated turn's first call whose tool name gets less than "
                                "this share of the model's probability on the offered names (a tool it was not given) "
                                "is answered in text instead (0: never)")
    call_gate_value_floor: float = Field(
        default=0.0, ge=0, lt=1, description="under constrained decoding, a gated turn whose call closes with a string "
                                             "value the user did not write and a token of it under this probability "
                                             "(the model's own) is answered in text instead (0: never)")


class Register(_Frozen):
    model_name: str = Field(min_length=1)
    gate_metric: str
    min_gain: float = Field(ge=0)
    alpha: float = Field(gt=0, lt=1, description="level of the gate's paired tests against this run's champion")
    keep_unpromoted: int = Field(ge=0, description="newest not-promoted versions that keep their weights")
    lock_timeout_s: float = Field(gt=0)


class Tracking(_Frozen):
    uri: str
    experiment: str
    http_max_retries: int = Field(ge=0, le=10)  # MLflow refuses more than 10
    http_backoff_factor: int = Field(ge=0, le=120)
    http_timeout_s: int = Field(ge=1)


class StageMinutes(_Frozen):
    """A limit in minutes for each stage; every stage must be named."""

    base: float = Field(gt=0)
    ingest: float = Field(gt=0)
    validate_: float = Field(gt=0, alias="validate")
    build: float = Field(gt=0)
    sft: float = Field(gt=0)
    reward_model: float = Field(gt=0)
    rl: float = Field(gt=0)
    evaluate: float = Field(gt=0)
    register_: float = Field(gt=0, alias="register")


class Orchestration(_Frozen):
    """Limits of `tooltune run` (the Prefect flow); `tooltune stage` and `dvc repro` run without them."""

    stage_timeout_minutes: StageMinutes = Field(description="a stage still running after this fails (no retry)")
    remote_start_minutes: float = Field(gt=0, description="for a stage sent to the GPU deployment: time allowed, on "
                                                          "top of its timeout, for the pool to start it")

    def stage_timeout(self, stage: str) -> float:
        """The timeout of `stage` in seconds."""
        return 60 * getattr(self.stage_timeout_minutes, f"{stage}_" if stage in ("validate", "register") else stage)


class Params(_Frozen):
    project: Project
    paths: Paths
    base: Base
    ingest: Ingest
    validate_: Validate = Field(alias="validate")
    build: Build
    sft: Sft
    reward_model: RewardModel
    rl: Rl
    evaluate: Evaluate
    decoding: Decoding
    bfcl: Bfcl
    general: General
    register_: Register = Field(alias="register")
    tracking: Tracking
    orchestration: Orchestration
    profiles: dict[str, dict[str, Any]] = Field(default_factory=dict)
    profile: str | None = None
    overrides: tuple[str, ...] = Field(default=(), description="the `-S key=value` overrides applied, in order")

    @model_validator(mode="after")
    def _system_prompt(self) -> "Params":
        if self.base.system_prompt is not None:
            return self
        from components.domains import system_prompt

        base = self.base.model_copy(update={"system_prompt": system_prompt(self.project.domain)})
        return self.model_copy(update={"base": base})

    @model_validator(mode="after")
    def _quantized(self) -> "Params":
        off = [name for name in ("sft", "reward_model") if not getattr(self, name).lora.enabled]
        if self.base.quantization and off:  # a 4-bit base cannot be updated: only adapters train
            raise ValueError(f"base.quantization: {self.base.quantization} trains LoRA adapters only; set "
                             f"{' and '.join(f'{name}.lora.enabled' for name in off)} to true")
        return self

    @model_validator(mode="after")
    def _sources(self) -> "Params":
        if self.project.catalog is not None and self.ingest.source != "none":
            raise ValueError(f"ingest.source: a domain given as a catalog ({self.project.catalog}) has no generator; "
                             "set ingest.source to none and list its data under ingest.imports")
        wrong = sorted(p for p, share in self.ingest.shares.items() if share > 0 and p not in GENERAL_PATTERNS)
        if self.project.domain == GENERAL_DOMAIN and self.ingest.source == "synthetic" and wrong:
            raise ValueError(f"ingest.shares: the {GENERAL_DOMAIN} generator writes {list(GENERAL_PATTERNS)} episodes, "
                             f"not {wrong}")
        foreign = self.ingest.irrelevance_kinds.get("foreign", 0)
        if foreign > 0 and self.project.domain != GENERAL_DOMAIN and self.ingest.source == "synthetic":
            raise ValueError(f"ingest.irrelevance_kinds.foreign: only the {GENERAL_DOMAIN} generator writes it (a "
                             f"built-in domain's requests for tools it lacks come from ingest.irrelevance_pool)")
        if self.ingest.source == "none" and not self.ingest.imports:
            raise ValueError("ingest.source is none: list the datasets to use under ingest.imports")
        return self

    def path(self, key: str) -> Path:
        """Absolute-or-relative path of a `paths` entry, under `project.workdir`."""
        return Path(self.project.workdir) / getattr(self.paths, key)


def _merge(base: dict, override: dict, where: str) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if key not in out:
            raise ConfigError(f"{where}.{key}: not a key of params.yaml")
        if isinstance(value, dict) and isinstance(out[key], dict) and key not in ("shares", "test_size"):
            out[key] = _merge(out[key], value, f"{where}.{key}")
        else:
            out[key] = value
    return out


def load_params(path: str | Path = PARAMS_FILE, profile: str | None = None,
                overrides: Sequence[str] = ()) -> Params:
    """Load params.yaml into a frozen `Params`.

    Args:
        path: The params file.
        profile: A preset under `profiles:` merged over the values; defaults to $TOOLTUNE_PROFILE.
        overrides: `key.path=value` strings applied after the profile, in order (`dvc exp run -S` syntax; the
            value is read as YAML: `120`, `true`, `[a, b]`, `{r: 8}`); each key must be one params.yaml sets.

    Raises:
        ConfigError: The file is missing, is not YAML, names an unknown key or breaks a rule; an override names
            an unknown key, or its value breaks a rule.
    """
    path = Path(path)
    profile = profile if profile is not None else (os.environ.get(PROFILE_ENV) or None)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise ConfigError(f"{path}: file not found") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    if profile:
        presets = raw.get("profiles") or {}
        if profile not in presets:
            raise ConfigError(f"{path}: unknown profile {profile!r}; known: {sorted(presets)}")
        raw = _merge({k: v for k, v in raw.items()}, presets[profile], f"{path}:profiles.{profile}")
        raw["profile"] = profile
    raw, set_by = copy.deepcopy(raw), {}  # the profile merge shares dicts with `profiles:`; leave those intact
    for override in overrides:
        key, value = parse_override(override, path)
        _set_key(raw, key, value, f"{path}: -S {override}")
        set_by[key] = override
    raw["overrides"] = list(overrides)
    try:
        return Params.model_validate(raw)
    except ValidationError as err:
        raise ConfigError("\n".join(_error_line(path, e, set_by) for e in err.errors())) from None


def parse_override(override: str, path: str | Path = PARAMS_FILE) -> tuple[str, Any]:
    """`"sft.max_steps=120"` -> `("sft.max_steps", 120)`: the value read as YAML, as `dvc exp run -S` does.

    Raises:
        ConfigError: Not `key.path=value`, or the value is not YAML.
    """
    key, sep, text = override.partition("=")
    key = key.strip()
    # DVC's (Hydra's) `+key=`, `++key=` and `~key` add or delete keys; Params has a fixed set of keys
    if not sep or not key or key[0] in "+~" or any(not part for part in key.split(".")):
        raise ConfigError(f"{path}: -S {override}: an override is key.path=value, e.g. sft.max_steps=120")
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: -S {override}: the value is not YAML: {str(err).splitlines()[0]}") from None
    return key, value


def _set_key(raw: dict[str, Any], key: str, value: Any, where: str) -> None:
    """Set `raw[a][b]...` for the key `a.b...`; every part must already be there (no new keys, as in DVC)."""
    parts = key.split(".")
    node: Any = raw
    for depth, part in enumerate(parts):
        reserved = depth == 0 and part in ("profiles", "profile", "overrides")
        if not isinstance(node, dict) or part not in node or reserved:
            raise ConfigError(f"{where}: {'.'.join(parts[:depth + 1])} is not a key of params.yaml")
        if depth == len(parts) - 1:
            node[part] = value
        else:
            node = node[part]


def _error_line(path: Path, error: Any, set_by: dict[str, str]) -> str:
    """`<file>: <key>: <message>`, naming the override that set this key, one above it or one inside it."""
    loc = ".".join(str(p) for p in error["loc"])
    # the typed models name `validate`/`register` by their alias in locations, like params.yaml
    override = next((o for k, o in set_by.items()
                     if loc and (loc == k or loc.startswith(k + ".") or k.startswith(loc + "."))), None)
    return f"{path}: {loc}: {error['msg']}" + (f" (set by -S {override})" if override else "")


def stage_params(params: Params, stage: str) -> dict[str, Any]:
    """The `params.yaml` section of a stage as a plain dict (for MLflow logging)."""
    return section(params, stage).model_dump()


def section(params: Params, stage: str) -> BaseModel:
    """The typed `params.yaml` section named like a stage (`validate` and `register` carry a trailing `_`)."""
    return getattr(params, f"{stage}_" if stage in ("validate", "register") else stage)
