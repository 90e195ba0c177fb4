"""The general generator (components/domains/general/): its functions' schemas, its episodes' gold calls against
their own tools, what it holds out of training, its pattern and kind shares, and the same episodes for any number
of drawing processes."""

from __future__ import annotations

import json
import re
from collections import Counter

import jsonschema
import pytest

from components import toolcalls
from components.config import ConfigError, load_params
from components.domains import general, generation, no_call
from components.domains.general import apis, draw, episodes
from components.domains.general.apis import CONCEPTS, OPS
from components.domains.general.concepts import pool
from components.domains.phrasing import held_only
from tests.conftest import REPO, write_params

SHARES = {"single": 0.5, "parallel": 0.3, "irrelevance": 0.2}
KINDS = {"chat": 0.2, "nearmiss": 0.35, "missing": 0.15, "foreign": 0.3}
N = 2400


@pytest.fixture(scope="module")
def settings():
    return general.settings_of(load_params(REPO / "params.yaml", profile="general").general)


@pytest.fixture(scope="module")
def drawn(settings):
    return draw.generate(settings, N, SHARES, 0.25, seed=3, kinds=KINDS)


@pytest.fixture(scope="module")
def split(drawn):
    return [e for e in drawn if e.split == "train"], [e for e in drawn if e.split == "test"]


def _param_names(tools) -> set[str]:
    """Every parameter name of these tools, nested object fields included."""
    def names(schema: dict) -> set[str]:
        props = schema.get("properties", {})
        return set(props) | {n for p in props.values() if p.get("type") == "object" for n in names(p)}

    return {n for t in tools for n in names(t.function.parameters)}


def test_hundreds_of_functions_with_unique_names_and_valid_schemas(settings):
    world = apis.apis(settings.heldout_functions)
    assert len(world) >= 300
    assert len({a.name for a in world}) == len(world)
    assert len({a.field for a in world}) >= 25
    for a in world:
        params = a.tool["function"]["parameters"]
        assert toolcalls.parameters_problem(params) is None, a.name
        jsonschema.Draft202012Validator.check_schema(params)
        assert set(params["required"]) <= set(params["properties"]), a.name
        assert a.tool["function"]["description"], a.name
        assert all(p.get("description") for p in params["properties"].values()), a.name
        assert re.fullmatch(r"[A-Za-z_][\w.]*", a.name), a.name


def test_parameters_cover_every_type(settings):
    schemas = [p for a in apis.apis(settings.heldout_functions)
               for p in a.tool["function"]["parameters"]["properties"].values()]
    kinds = Counter(p["type"] for p in schemas)
    assert {"string", "integer", "number", "boolean", "array", "object"} <= set(kinds)
    assert any("enum" in p for p in schemas)
    assert any("default" in p for p in schemas)  # optional with a default
    assert any(p["type"] == "array" and p["items"]["type"] == "integer" for p in schemas)
    params = [a.tool["function"]["parameters"] for a in apis.apis(settings.heldout_functions)]
    optional = [p for p in params if set(p["properties"]) - set(p["required"])]
    assert len(optional) > 100


def test_every_expected_call_fits_its_own_records_schema_and_scores_exact(drawn):
    calls = 0
    for e in drawn:
        index = toolcalls.tool_index(e.tool_dicts())
        assert len(index) == len(e.tools), e.id  # no name offered twice
        for step in e.expected.steps:
            gold = [c.model_dump(exclude_none=True) for c in step]
            for call in gold:
                assert call["name"] in index, e.id
                assert toolcalls.schema_errors(call, index) == [], (e.id, call)
                calls += 1
            made = [{"name": c["name"], "arguments": c["arguments"]} for c in gold]
            assert toolcalls.score_step(made, gold, index).exact, e.id
    assert calls > N / 2


def test_tools_come_in_shuffled_order_some_prompts_with_one_tool_alone(drawn, settings):
    assert settings.distractors[0] == 0
    first, alone = Counter(), Counter()
    for e in drawn:
        needed = {c.name for step in e.expected.steps for c in step}
        assert len(e.tools) >= max(1, len(needed)), e.id
        if len(e.tools) == 1:
            alone[e.source.split(":")[1]] += 1
        if e.pattern == "single":
            first[[t.function.name for t in e.tools].index(next(iter(needed)))] += 1
    assert len(first) >= 4 and max(first.values()) < 0.5 * sum(first.values())
    # one tool alone, as in BFCL's simple and irrelevance questions: to call, and to refuse (near miss, other field)
    assert alone["simple"] >= 5 and alone["nearmiss"] >= 2 and alone["foreign"] >= 2, alone
    assert alone["multiple"] == alone["parallel_multiple"] == 0  # they offer two tools or more


def test_patterns_and_kinds_come_at_their_shares(drawn):
    patterns = Counter(e.pattern for e in drawn)
    assert patterns == {p: round(s * N) for p, s in SHARES.items()}
    kinds = Counter(e.source.split(":")[1] for e in drawn)
    assert kinds["multiple"] / patterns["single"] == pytest.approx(0.5, abs=0.06)
    assert kinds["parallel_multiple"] / patterns["parallel"] == pytest.approx(0.5, abs=0.07)
    for kind, share in KINDS.items():
        assert kinds[kind] / patterns["irrelevance"] == pytest.approx(share, abs=0.08), kind
    assert sum(e.split == "test" for e in drawn) / N == pytest.approx(0.25, abs=0.03)
    for e in drawn:
        steps = e.expected.steps
        assert e.id.endswith(e.source.split(":")[1])
        if e.source.endswith(":parallel"):
            assert len(steps[0]) >= 2 and len({c.name for c in steps[0]}) == 1
        if e.source.endswith(":parallel_multiple"):
            assert len({c.name for c in steps[0]}) >= 2
        if e.pattern == "irrelevance":
            assert steps == [] and not e.messages[-1].tool_calls
        if e.source.endswith((":chat", ":nearmiss", ":foreign")):  # the reply names exactly the tools offered, in their order
            assert e.messages[-1].content in {no_call.no_call_reply(e.tools), no_call.no_call_reply(e.tools, True)}


def test_foreign_requests_come_with_no_tool_of_their_field(settings):
    import random

    w = episodes.world(settings.heldout_functions)
    rng = random.Random(0)
    for i in range(300):
        held = i % 2 == 1
        d = episodes._irrelevance(settings, w, rng, held, "foreign")
        e = episodes._write(settings, w, rng, d, "irrelevance", held, i)
        assert d.about is not None and d.about.name not in {t.function.name for t in e.tools}
        fields = {a.name: a.field for a in w.train + w.held}
        assert all(fields[t.function.name] != d.about.field for t in e.tools), (d.user, d.about.field)
        assert 1 <= len(e.tools) <= settings.distractors[1] and not e.expected.steps
        if not held:  # a training request asks for a training function, in training wording
            assert d.about in w.train


def test_held_out_functions_and_parameter_names_never_reach_training(settings, split):
    train, test = split
    held = {a.name for a in apis.apis(settings.heldout_functions) if a.held}
    train_tools = [t for e in train for t in e.tools]
    assert {t.function.name for t in train_tools}.isdisjoint(held)
    test_calls = {c.name for e in test for s in e.expected.steps for c in s}
    assert test_calls and test_calls <= held  # every test call asks for a held-out function
    held_params = _param_names(t for e in test for t in e.tools if t.function.name in held)
    assert held_params and held_params.isdisjoint(_param_names(train_tools))
    trained_text = " ".join(json.dumps(e.message_dicts()) for e in train)
    assert not any(re.search(rf"\b{re.escape(name)}\b", trained_text) for name in held)


def test_concepts_and_operations_keep_their_sides_apart():
    train = {n for c in CONCEPTS.values() for n in c.names[0]}
    held = {n for c in CONCEPTS.values() for n in c.names[1]}
    assert train and held and train.isdisjoint(held)
    verbs = [pool(op.verbs) for op in OPS.values()]
    assert set().union(*(v[0] for v in verbs)).isdisjoint(set().union(*(v[1] for v in verbs)))


HELD_HEADS = ("pull up the", "hunt down", "figure out the", "call off the", "side-by-side", "double-check the",
              "on the hunt for")


def test_held_out_wording_is_only_in_the_test_split(split):
    train, test = split
    trained = [m.content for e in train for m in e.messages if m.role == "user"]
    tested = " ".join(m.content for e in test for m in e.messages if m.role == "user")
    for phrase in HELD_HEADS:
        assert not any(phrase.lower() in t.lower() for t in trained), phrase
    assert sum(phrase.lower() in tested.lower() for phrase in HELD_HEADS) >= 5
    from components.domains.phrasing import OPENERS

    held_openers = [o for o in held_only(OPENERS) if o.strip()]
    assert not any(t.startswith(tuple(held_openers)) for t in trained)
    assert any(t.startswith(tuple(held_openers)) for t in tested.split("\n")) or any(o in tested for o in held_openers)


def test_requests_are_unique_so_no_request_straddles_splits(drawn):
    keys = [k for e in drawn if (k := generation.request_key(e)) is not None]
    assert len(keys) == len(set(keys))


def test_same_episodes_for_any_number_of_workers_and_seed_decides(settings):
    one = draw.generate_lines(settings, 400, SHARES, 0.25, 5, workers=1, kinds=KINDS, chunk=50)
    two = draw.generate_lines(settings, 400, SHARES, 0.25, 5, workers=2, kinds=KINDS, chunk=50)
    assert [g.line for g in one] == [g.line for g in two]
    assert [g.line for g in one] == [e.model_dump_json(exclude_none=True)
                                     for e in draw.generate(settings, 400, SHARES, 0.25, 5, KINDS, chunk=50)]
    other = draw.generate_lines(settings, 400, SHARES, 0.25, 6, workers=1, kinds=KINDS, chunk=50)
    assert [g.line for g in one] != [g.line for g in other]


def test_each_function_has_many_distinct_phrasings(settings):
    counts = draw.phrasing_counts(settings, n=40)
    assert len(counts) >= 300
    assert min(counts.values()) >= 20  # of 40 draws: few repeats even among the held-out functions' fewer parts


def test_general_domain_is_the_projects_with_its_settings(params_factory):
    p = params_factory(project={"domain": "general"}, ingest={"shares": SHARES})
    from components import domains

    d = domains.of(p)
    assert d.name == "general" and not d.simulated and d.generate is not None
    assert len(d.catalog()) >= 300
    assert [e.id for e in d.generate(20, SHARES, 0.25, 0, KINDS)] == \
        [e.id for e in draw.generate(general.settings_of(p.general), 20, SHARES, 0.25, 0, KINDS)]


def test_general_rejects_patterns_it_does_not_write_and_catalogs_named_general(tmp_path):
    path = write_params(tmp_path, "quick", project={"domain": "general"})  # quick keeps the chain / recovery shares
    with pytest.raises(ConfigError, match="general generator writes"):
        load_params(path, profile="")
    path = write_params(tmp_path, "quick", project={"domain": "general", "catalog": "tools.json"},
                        ingest={"source": "none", "imports": [{"source": "openai", "path": "x.jsonl",
                                                                "domain": "general"}]})
    with pytest.raises(ConfigError, match="built-in domain"):
        load_params(path, profile="")
    path = write_params(tmp_path, "quick", ingest={"irrelevance_kinds": {"chat": 0.5, "nearmiss": 0, "missing": 0, "foreign": 0.5}})
    with pytest.raises(ConfigError, match="only the general generator writes it"):
        load_params(path, profile="")
    path = write_params(tmp_path, "quick", project={"domain": "general"}, ingest={"shares": SHARES},
                        general={"parallel_calls": [1, 3]})
    with pytest.raises(ConfigError, match="2 calls or more"):
        load_params(path, profile="")
