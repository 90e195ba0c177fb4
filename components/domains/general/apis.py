"""The general generator's functions: every (noun, operation) of components/domains/general/fields.py composed into
an `Api`: a name, typed parameters with an OpenAI-format JSON Schema, and the request heads a user starts with.

A stable share of the functions (`heldout`, by a hash of field, noun and operation) is held out: its episodes go
only to the test split, its name is written in a style or with a verb training never shows (camelCase; `retrieve`,
`lookup`, ...), its parameters take the held-out side of their concepts' names and it is never offered in a training
episode, not even as a distractor. The world itself does not depend on the seed: the seed draws episodes from it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from components.domains import sim
from components.domains.general import daily, everyday, fields, leisure, vocab
from components.domains.general.concepts import UNITS, Concept, enum, num, pool
from components.domains.general.fields import Field, Noun
from components.domains.phrasing import Head, Pool

CONCEPTS: dict[str, Concept] = {**vocab.CONCEPTS, **everyday.EVERYDAY, **leisure.LEISURE}
FIELDS = fields.FIELDS + daily.DAILY
NAME_STYLES: Pool = (["snake", "snake", "dotted"], ["snake", "dotted", "camel"])


@dataclass(frozen=True)
class Op:
    """An operation every noun may have: function-name verbs, request heads, a description, its own parameters."""

    verbs: str  # "train verbs|held-out verbs"
    heads: str  # "form:text/...|form:text/..." with {n} for the noun (plural when `plural`)
    describe: str  # the description's first sentence, {n} for the noun
    adds: str = ""  # "required | optional" concepts the operation adds
    suffix: str = ""  # name suffix after the noun
    plural: bool = False


OPS: dict[str, Op] = {
    "get": Op("get fetch|retrieve lookup", "do:get the {n}/do:show me the {n}/do:look up the {n}/do:find the {n}/"
              "ask:what's the {n}/ask:what is the {n}/do:tell me the {n}|do:pull up the {n}/say:I need the {n}/"
              "ask:any idea what the {n} is", "Get the {n}."),
    "history": Op("get fetch|retrieve lookup", "do:get the {n} history/do:show the past {n}/ask:what was the {n}/"
                  "do:give me historical {n} data|do:pull the {n} records/say:I'd like the {n} history",
                  "Get the historical {n} between two dates.", "start_date end_date | interval", "history"),
    "stats": Op("get fetch|retrieve lookup", "do:get the {n} stats/do:show the {n} statistics/"
                "ask:what are the {n} stats|do:summarise the {n} numbers/say:I'd like a {n} summary",
                "Get {n} statistics over a period.",
                "period |", "stats"),
    "search": Op("search find|query discover", "do:search for {n}/do:find {n}/do:look for {n}/do:show me {n}/"
                 "ask:are there any {n}|do:hunt down {n}/say:I'm on the hunt for {n}", "Search {n}.", "| limit",
                 plural=True),
    "list": Op("list|enumerate browse", "do:list the {n}/do:show all the {n}/ask:which {n} are there/"
               "do:give me the {n}|do:enumerate the {n}/say:I want to see the {n}", "List the {n}.", "| page",
               plural=True),
    "compare": Op("compare|contrast benchmark", "do:compare the {n}/ask:how do the {n} compare/"
                  "do:give me a comparison of the {n}|do:contrast the {n}/say:I want a side-by-side of the {n}",
                  "Compare the {n} of several items.", plural=True),
    "calc": Op("calculate compute|calc evaluate estimate", "do:calculate the {n}/do:compute the {n}/ask:what's the {n}/"
               "do:work out the {n}/ask:what is the {n}/do:find the {n}|do:figure out the {n}/"
               "ask:what would the {n} be/do:determine the {n}", "Calculate the {n}."),
    "convert": Op("convert|transform", "do:convert {0} {1} to {2}/ask:how many {2} is {0} {1}/"
                  "ask:what is {0} {1} in {2}/do:change {0} {1} into {2}|do:express {0} {1} in {2}/ask:{0} {1} equals "
                  "how many {2}",
                  "Convert a {n} value from one unit to another.", "| round_to"),
    "create": Op("|make new", "do:{verb} {a_n}/do:create {a_n}/do:set up {a_n}/say:I'd like to {verb} {a_n}|"
                 "do:arrange {a_n}/say:I want to {verb} {a_n}", "{Verb} {a_n}."),
    "cancel": Op("cancel delete|revoke remove", "do:cancel the {n}/do:cancel my {n}/do:delete the {n}|"
                 "do:call off the {n}/say:I no longer need the {n}", "Cancel the {n}."),
    "check": Op("check validate|verify inspect", "do:check the {n}/do:validate the {n}/ask:can you check the {n}|"
                "do:double-check the {n}/ask:is the {n} okay", "Check the {n}."),
    "set": Op("set update|adjust configure", "do:set the {n}/do:change the {n}/do:update the {n}|do:adjust the {n}/"
              "say:I want the {n} changed", "Set the {n}."),
    "analyze": Op("analyze detect|assess inspect", "do:analyse the {n}/ask:what's the {n}/do:detect the {n}|"
                  "do:assess the {n}/ask:how would you rate the {n}", "Analyze the {n} of a text."),
}


@dataclass(frozen=True)
class Param:
    name: str  # the schema's parameter name
    key: str  # its concept's key
    concept: Concept
    required: bool
    fields: tuple[tuple[str, str], ...] = ()  # object: (field key, schema name)


@dataclass(frozen=True, eq=False)
class Api:
    """One made-up function (compared and hashed by identity: `apis` builds each once)."""

    name: str
    field: str
    noun: str  # the noun's stem
    op: str
    held: bool
    params: tuple[Param, ...]
    heads: Pool  # (text, form) heads; `{k}` names parameter k
    contexts: Pool  # its field's context sentences
    tool: dict[str, Any]  # {"type": "function", "function": {name, description, parameters}}


def _heads(spec: str, spellings: list[str], **words: str) -> Pool:
    """Head pools from `"form:text/...|..."`, one head per spelling of the noun."""
    def fill(text: str, spelling: str) -> str:  # {n}, {a_n}, {verb}; parameter references {0}, {1} stay
        known = {"n": spelling, "a_n": f"{_article(spelling)} {spelling}", **words}
        return re.sub(r"\{([a-z_]+)\}", lambda m: known[m.group(1)], text)

    return tuple([(fill(text, s), form) for part in side for s in spellings for form, _, text in [part.partition(":")]]
                 for side in pool(spec, "/"))  # type: ignore[return-value]


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _plural(spelling: str) -> str:
    return spelling if spelling.endswith("s") else spelling[:-1] + "ies" if spelling.endswith("y") else spelling + "s"


def _name(field: Field, noun: Noun, op_name: str, held: bool) -> str:
    """The function name: a verb (training or held-out side), the noun's stem, the op's suffix, in a name style."""
    op = OPS[op_name]
    verbs = pool(op.verbs)[held] or [(noun.verb or "create").split()[0]]
    verb = verbs[sim.stable_hash("verb", field.name, noun.stem, op_name) % len(verbs)]
    stem = (noun.many or noun.stem + "s") if op.plural else noun.stem
    words = [verb, *stem.split("_"), *([op.suffix] if op.suffix else [])]
    style = NAME_STYLES[held][sim.stable_hash("style", field.name, noun.stem, op_name) % len(NAME_STYLES[held])]
    if style == "camel":
        return words[0] + "".join(w.capitalize() for w in words[1:])
    snake = "_".join(words)
    return f"{field.name}.{snake}" if style == "dotted" else snake


def _param_specs(noun: Noun, op_name: str) -> list[tuple[str, Concept, bool]]:
    """(concept key, concept, required) of a function's parameters, in order: the noun's, then the op's own."""
    if op_name == "convert":
        family = noun.ops["convert"]
        units = {k: "/".join(pool(v, "/")[0]) + "|" + "/".join(pool(v, "/")[1]) for k, v in UNITS[family].items()}
        label = "amount" if family == "currency" else "value"
        value = num(label, "value amount|magnitude measure_value", 1, 1000, 0.5, "{v}")
        return [("value", value, True),
                ("from_unit", enum("unit to convert from", "from_unit source_unit|unit_in original_unit", units), True),
                ("to_unit", enum("unit to convert to", "to_unit target_unit|unit_out desired_unit", units), True),
                ("round_to", CONCEPTS["round_to"], False)]
    required, _, optional = noun.ops[op_name].partition("|")
    more_required, _, more_optional = OPS[op_name].adds.partition("|")
    keys = [(k, True) for k in required.split() + more_required.split()]
    keys += [(k, False) for k in optional.split() + more_optional.split()]
    seen: set[str] = set()
    out = []
    for key, req in keys:
        if key not in seen:
            seen.add(key)
            out.append((key, CONCEPTS[key], req))
    return out


def _pick(names: list[str], taken: set[str], *salt: Any) -> str:
    """A name of `names` not in `taken`, chosen by a stable hash of `salt`.

    Raises:
        ValueError: every name is taken (two parameters of one function share all their spellings).
    """
    start = sim.stable_hash(*salt)
    for i in range(len(names)):
        name = names[(start + i) % len(names)]
        if name not in taken:
            taken.add(name)
            return name
    raise ValueError(f"no free parameter name among {names} for {salt}")


def _params(fn_id: str, noun: Noun, op_name: str, held: bool) -> tuple[Param, ...]:
    taken: set[str] = set()
    out = []
    for key, concept, required in _param_specs(noun, op_name):
        name = _pick(concept.names[held], taken, fn_id, key)
        sub: set[str] = set()
        fields = tuple((k, _pick(CONCEPTS[c].names[held], sub, fn_id, key, k)) for k, c in concept.fields.items())
        out.append(Param(name, key, concept, required, fields))
    return tuple(out)


def schema(concept: Concept, fields: tuple[tuple[str, str], ...] = (), required: bool = True) -> dict[str, Any]:
    """The JSON Schema of one parameter (its description names its unit, format and default)."""
    text = concept.label[:1].upper() + concept.label[1:] + (f" ({concept.unit})" if concept.unit else "")
    kind = concept.kind
    out: dict[str, Any] = {"type": {"enum": "string", "date": "string", "time": "string"}.get(kind, kind)}
    if kind == "enum":
        out["enum"] = list(concept.options)
    if kind == "date":
        text += ", YYYY-MM-DD"
    if kind == "time":
        text += ", HH:MM (24-hour)"
    if kind == "array":
        out["items"] = schema(CONCEPTS[concept.item]) if concept.item else {"type": "string"}
    if kind == "object":
        out["properties"] = {name: schema(CONCEPTS[concept.fields[k]]) for k, name in fields}
        out["required"] = [name for _, name in fields]
    if not required and concept.default is not None:
        out["default"] = concept.default
        text += f". Default: {concept.default}"
    out["description"] = text + "."
    return {"type": out.pop("type"), "description": out.pop("description"), **out}


def _tool(name: str, description: str, params: tuple[Param, ...]) -> dict[str, Any]:
    properties = {p.name: schema(p.concept, p.fields, p.required) for p in params}
    return {"type": "function", "function": {"name": name, "description": description, "parameters": {
        "type": "object", "properties": properties, "required": [p.name for p in params if p.required]}}}


def _api(field: Field, noun: Noun, op_name: str, heldout: float) -> Api:
    held = sim.stable_share("general-held", field.name, noun.stem, op_name) < heldout
    op = OPS[op_name]
    spellings = [s.strip() for s in noun.spellings.split("/")]
    if op.plural:
        spellings = [s.strip() for s in noun.plural.split("/")] if noun.plural else [_plural(s) for s in spellings]
    verb = noun.verb or "create"
    name = _name(field, noun, op_name, held)
    params = _params(f"{field.name}/{noun.stem}/{op_name}", noun, op_name, held)
    heads = _heads(noun.heads.get(op_name, op.heads), spellings, verb=verb)
    first = op.describe.format(n=spellings[0], Verb=verb.capitalize(), a_n=f"{_article(spellings[0])} {spellings[0]}")
    labels = [p.concept.label for p in params if p.required]
    description = first + (f" Needs the {', '.join(labels)}." if labels else "")
    return Api(name, field.name, noun.stem, op_name, held, params, heads, pool(field.contexts, "/"),
               _tool(name, description, params))


@lru_cache(maxsize=4)
def apis(heldout: float) -> tuple[Api, ...]:
    """Every function of the world, a `heldout` share of them held out.

    Raises:
        ValueError: two functions share a name (the world's nouns and verbs collide), or a function's parameters
            share every spelling of a name.
    """
    out = tuple(_api(f, n, op, heldout) for f in FIELDS for n in f.nouns for op in n.ops)
    names = [a.name for a in out]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"general generator: function names used twice: {repeated}")
    return out


def placeholders(text: str, tag: str) -> str:
    """A head with its parameter references `{k}` renamed to the request's slot names `{<tag><k>}`."""
    return re.sub(r"\{(\d+)\}", lambda m: "{" + f"{tag}{m.group(1)}" + "}", text)


def head_pool(api: Api, tag: str) -> tuple[list[Head], list[Head]]:
    """The function's heads with parameter references named for one request (`placeholders`)."""
    return tuple([(placeholders(t, tag), form) for t, form in side] for side in api.heads)  # type: ignore[return-value]
