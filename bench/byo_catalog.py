"""Measurement: a bring-your-own catalog domain end to end, free against constrained decoding (issue 15).

    python bench/byo_catalog.py --workdir DIR [--records 1500] [--steps 66] [--seed 0] [--skip-train] [-S key=value]

The domain is written here, not by the travel or finance generators: `plant`, five industrial-control tools
(sensors, set points, work orders, alarm history, maintenance) with no simulator, and user requests composed from
openers, phrasings, value spellings and closers of its own. Two import files: `plant_train.jsonl` (heldout 0) and
`plant_test.jsonl` (heldout 1), whose phrasings (the last of each tool's templates) and openers never reach
training, so the test measures requests phrased unlike the training data. No record of either file is a no-call
one: every no-call episode comes from the project (`ingest.irrelevance_pool`: off-domain pool and removed-tool
twins). A hand-written set (`HANDWRITTEN`: 20 requests, 12 of them with no fitting tool, near misses included) is
the evaluation's hand-written column.

The workdir gets the repository's params with the catalog domain set, then runs `tooltune stage` base, ingest,
validate, build, sft and evaluate (models base and sft, `decoding.compare: [sft]`: the `sft_constrained` column,
McNemar-paired against `sft`). The report is the evaluate stage's (`DIR/reports/evaluate.md`).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]

CATALOG = [
    {"type": "function", "function": {
        "name": "read_sensor", "description": "Current reading of a plant sensor by its tag.",
        "parameters": {"type": "object", "properties": {
            "tag": {"type": "string", "description": "Sensor tag, e.g. TT-101."},
            "unit": {"type": "string", "enum": ["C", "F", "bar", "psi", "rpm", "m3/h"],
                     "description": "Unit to report in."}},
            "required": ["tag"]}}},
    {"type": "function", "function": {
        "name": "set_setpoint", "description": "Change the set point of a control loop.",
        "parameters": {"type": "object", "properties": {
            "loop": {"type": "string", "description": "Control loop tag, e.g. TIC-101."},
            "value": {"type": "number", "description": "New set point."}},
            "required": ["loop", "value"]}}},
    {"type": "function", "function": {
        "name": "open_work_order", "description": "Open a maintenance work order for an asset with a fault.",
        "parameters": {"type": "object", "properties": {
            "asset": {"type": "string", "description": "Asset id, e.g. P-101."},
            "fault": {"type": "string", "enum": ["leak", "vibration", "overheating", "noise", "tripped"]},
            "priority": {"type": "string", "enum": ["low", "medium", "high", "urgent"]}},
            "required": ["asset", "fault", "priority"]}}},
    {"type": "function", "function": {
        "name": "get_alarm_history", "description": "Alarms raised in a plant area over the last hours.",
        "parameters": {"type": "object", "properties": {
            "area": {"type": "string", "description": "Plant area."},
            "hours": {"type": "integer", "description": "How many hours back."}},
            "required": ["area", "hours"]}}},
    {"type": "function", "function": {
        "name": "schedule_maintenance", "description": "Book planned maintenance of an asset on a day.",
        "parameters": {"type": "object", "properties": {
            "asset": {"type": "string", "description": "Asset id."},
            "date": {"type": "string", "description": "Day, YYYY-MM-DD."}},
            "required": ["asset", "date"]}}},
]

SENSORS = {"TT": "temperature", "PT": "pressure", "FT": "flow", "ST": "speed"}
UNITS = {"TT": ["C", "F"], "PT": ["bar", "psi"], "FT": ["m3/h"], "ST": ["rpm"]}
UNIT_WORDS = {"C": ["celsius", "degrees C", "°C"], "F": ["fahrenheit", "degrees F", "°F"], "bar": ["bar"],
              "psi": ["psi"], "m3/h": ["cubic metres per hour", "m3/h"], "rpm": ["rpm", "revs per minute"]}
ASSETS = ["P-101", "P-102", "K-201", "HX-3", "M-14", "V-220", "C-7", "B-2", "F-310", "AG-5", "P-455", "K-9"]
AREAS = ["boiler house", "tank farm", "line 2", "packaging", "the compressor hall", "utilities", "line 1",
         "the water treatment plant", "cooling towers", "the dryer section"]
FAULTS = {"leak": ["is leaking", "has a leak", "is dripping oil"], "vibration": ["is vibrating badly", "shakes"],
          "overheating": ["is running hot", "is overheating"], "noise": ["makes a grinding noise", "is noisy"],
          "tripped": ["tripped", "keeps tripping"]}
PRIORITY = {"low": ["low priority", "no rush"], "medium": ["medium priority", "normal priority"],
            "high": ["high priority", "soon"], "urgent": ["urgent", "ASAP, it's urgent"]}
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]

# Per tool: phrasings; the last two of each are held out (test file only).
TEMPLATES = {
    "read_sensor": ["what does {tag} read{unit_part}", "give me the current value of {tag}{unit_part}",
                    "read {tag}{unit_part}", "check {kind} transmitter {tag}{unit_part}",
                    "what's {tag} showing right now{unit_part}", "pull the live reading from {tag}{unit_part}",
                    "how's {tag} looking{unit_part}"],
    "set_setpoint": ["set {loop} to {value}", "change the set point of {loop} to {value}",
                     "put {loop} at {value}", "move {loop}'s set point to {value}", "I want {loop} at {value}",
                     "bump {loop} up to {value}", "dial {loop} in at {value}"],
    "open_work_order": ["{asset} {fault_text}, open a work order, {prio_text}",
                        "raise a ticket: {asset} {fault_text} ({prio_text})",
                        "open a {prio} work order for {asset}, it {fault_text}",
                        "log a job for {asset}: it {fault_text}, {prio_text}", "{asset} {fault_text}. {prio_text}",
                        "maintenance needs to look at {asset}, it {fault_text}, {prio_text}",
                        "write up {asset} - it {fault_text} - {prio_text}"],
    "get_alarm_history": ["show alarms in {area} for the last {hours} hours",
                          "what alarms went off in {area} in the past {hours} hours",
                          "alarm history for {area}, last {hours}h", "list {area} alarms from the last {hours} hours",
                          "any alarms in {area} over the last {hours} hours", "what tripped in {area} the last {hours} hours",
                          "did {area} raise anything in the last {hours} hours"],
    "schedule_maintenance": ["schedule maintenance on {asset} for {date_text}", "book {asset} in for service on {date_text}",
                             "plan a PM for {asset} on {date_text}", "put {asset} down for maintenance {date_text}",
                             "I need {asset} serviced on {date_text}", "can the crew do {asset} on {date_text}",
                             "pencil in {asset} for upkeep {date_text}"],
}
OPENERS = [["", "Please ", "Can you ", "Could you ", "Hey, ", "Quick one: ", "I need you to ", "Operator here. "],
           ["Hi there, ", "Morning. ", "Shift lead here: "]]  # [train, held out]
CLOSERS = [["", "", ".", "?", " thanks", ", thank you.", " please."], [" cheers!", " - ta"]]

# Written by hand: requests a plant operator might type; 12 have no fitting tool (answer in text, no call).
HANDWRITTEN = [
    ("TT-415 - what is it reading in fahrenheit?", [("read_sensor", {"tag": "TT-415", "unit": "F"})]),
    ("night shift says K-201 is shaking like crazy, get a work order in, urgent",
     [("open_work_order", {"asset": "K-201", "fault": "vibration", "priority": "urgent"})]),
    ("pls drop TIC-305 setpoint to 62.5", [("set_setpoint", {"loop": "TIC-305", "value": 62.5})]),
    ("anything alarm-wise in the tank farm since yesterday? say last 24 hours",
     [("get_alarm_history", {"area": "tank farm", "hours": 24})]),
    ("Book P-102 for planned maintenance on 12 May", [("schedule_maintenance", {"asset": "P-102",
                                                                                 "date": "2026-05-12"})]),
    ("FT-118 flow right now?", [("read_sensor", {"tag": "FT-118"})]),
    ("V-220 is leaking a bit, not urgent, low prio ticket please",
     [("open_work_order", {"asset": "V-220", "fault": "leak", "priority": "low"})]),
    ("last 8 hours of alarms for line 1", [("get_alarm_history", {"area": "line 1", "hours": 8})]),
    ("What's the capital of Norway?", []),
    ("tell me a joke to keep the night shift awake", []),
    ("Order pizza for the control room, 4 large", []),
    ("Can you book me a table at the canteen for Friday?", []),
    ("restart the SCADA server", []),
    ("what's 17 times 23", []),
    ("email the plant manager the monthly report", []),
    ("open the main steam valve on line 2 fully", []),
    ("Book a rental car for the contractor arriving Monday", []),
    ("thanks, that's all for now", []),
    ("set the setpoint", []),
    ("schedule maintenance", []),
]


def _date(rng: random.Random) -> tuple[str, str]:
    month, day = rng.randrange(3, 13), rng.randrange(1, 29)
    iso = f"2026-{month:02d}-{day:02d}"
    suffix = "th" if 10 < day < 14 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    text = rng.choice([f"{MONTHS[month - 1]} {day}", f"{day} {MONTHS[month - 1]}", iso,
                       f"the {day}{suffix} of {MONTHS[month - 1]}"])
    return iso, text


def request(tool: str, rng: random.Random, held: int) -> tuple[str, dict]:
    """One request for `tool` (no opener or closer) and its expected arguments; `held` 0 = training parts,
    1 = held-out parts."""
    names = TEMPLATES[tool][:-2] if held == 0 else TEMPLATES[tool][-2:]
    template = rng.choice(names)
    slots: dict = {}
    if tool == "read_sensor":
        prefix = rng.choice(sorted(SENSORS))
        tag = f"{prefix}-{rng.randrange(100, 500)}"
        args = {"tag": tag}
        unit = rng.choice(UNITS[prefix] + [None])
        if unit:
            args["unit"] = unit
        slots = {"tag": tag, "kind": SENSORS[prefix],
                 "unit_part": f" in {rng.choice(UNIT_WORDS[unit])}" if unit else ""}
    elif tool == "set_setpoint":
        loop = f"{rng.choice(['TIC', 'PIC', 'FIC', 'LIC'])}-{rng.randrange(100, 500)}"
        value = rng.choice([rng.randrange(5, 400), round(rng.uniform(1, 200), 1)])
        args, slots = {"loop": loop, "value": value}, {"loop": loop, "value": value}
    elif tool == "open_work_order":
        asset, fault, prio = rng.choice(ASSETS), rng.choice(sorted(FAULTS)), rng.choice(sorted(PRIORITY))
        args = {"asset": asset, "fault": fault, "priority": prio}
        slots = {"asset": asset, "fault_text": rng.choice(FAULTS[fault]), "prio": prio,
                 "prio_text": rng.choice(PRIORITY[prio])}
    elif tool == "get_alarm_history":
        area, hours = rng.choice(AREAS), rng.choice([1, 2, 4, 6, 8, 12, 24, 48, 72])
        args, slots = {"area": area, "hours": hours}, {"area": area, "hours": hours}
    else:
        asset = rng.choice(ASSETS)
        iso, text = _date(rng)
        args, slots = {"asset": asset, "date": iso}, {"asset": asset, "date_text": text}
    return template.format(**slots), args


def record(rid: str, text: str, calls: list[tuple[str, dict]]) -> dict:
    """An OpenAI-format trajectory: the request, the calls, tool results, a final answer (none for no call)."""
    if not calls:
        return {"id": rid, "messages": [{"role": "user", "content": text},
                                        {"role": "assistant", "content": "None of my plant tools can do that."}]}
    tool_calls = [{"id": f"c{i}", "type": "function", "function": {"name": n, "arguments": json.dumps(a)}}
                  for i, (n, a) in enumerate(calls)]
    results = [{"role": "tool", "tool_call_id": f"c{i}", "content": json.dumps({"ok": True})}
               for i in range(len(calls))]
    return {"id": rid, "messages": [{"role": "user", "content": text},
                                    {"role": "assistant", "content": None, "tool_calls": tool_calls},
                                    *results, {"role": "assistant", "content": "Done."}]}


def records(n: int, held: int, seed: int) -> list[dict]:
    """`n` records with unique user texts: singles, and every fifth two requests in one message (parallel)."""
    rng, out, seen = random.Random(seed * 2 + held), [], set()
    tools = [t["function"]["name"] for t in CATALOG]
    while len(out) < n:
        picked = rng.sample(tools, 2) if len(out) % 5 == 4 else [rng.choice(tools)]
        parts = [request(t, rng, held) for t in picked]
        body = " and ".join(p[0] for p in parts)
        opener, closer = rng.choice(OPENERS[held]), rng.choice(CLOSERS[held])
        text = opener + (body[0] if opener else body[0].upper()) + body[1:] + closer
        if text in seen:
            continue
        seen.add(text)
        out.append(record(f"plant-{'test' if held else 'train'}-{len(out):04d}", text,
                          list(zip(picked, [p[1] for p in parts]))))
    return out


def write_workdir(workdir: Path, n_records: int, steps: int, seed: int) -> Path:
    """The catalog, the two import files, the hand-written set and params.yaml under `workdir`."""
    imports = workdir / "data" / "imports"
    imports.mkdir(parents=True, exist_ok=True)
    (imports / "plant_tools.json").write_text(json.dumps(CATALOG, indent=1))
    for name, n, held in (("plant_train", n_records, 0), ("plant_test", n_records // 5, 1)):
        (imports / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records(n, held, seed)))
    (imports / "plant_handwritten_openai.jsonl").write_text("".join(
        json.dumps(record(f"plant-hand-{i:02d}", text, calls)) + "\n" for i, (text, calls) in enumerate(HANDWRITTEN)))
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["project"].update({"domain": "plant", "catalog": "data/imports/plant_tools.json", "seed": seed})
    params["base"]["system_prompt"] = ("You are the control-room assistant of a process plant. Call a tool when it "
                                       "helps; ask for a missing detail; answer directly when no tool fits.")
    params["ingest"].update({"source": "none", "imports": [
        {"source": "openai", "path": "data/imports/plant_train.jsonl", "domain": "plant", "heldout_fraction": 0.0},
        {"source": "openai", "path": "data/imports/plant_test.jsonl", "domain": "plant", "heldout_fraction": 1.0}]})
    params["build"]["test_size"] = {"single": 120, "parallel": 50, "irrelevance": 50}
    params["sft"]["max_steps"] = steps
    params["evaluate"].update({"models": ["base", "sft"], "compare_champion": False,
                               "handwritten": "data/imports/plant_handwritten.jsonl"})
    params["decoding"]["compare"] = ["sft"]
    (workdir / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return workdir / "params.yaml"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", required=True, type=Path)
    ap.add_argument("--records", type=int, default=1500, help="training records (the test file gets a fifth)")
    ap.add_argument("--steps", type=int, default=66, help="SFT steps")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-train", action="store_true", help="only the evaluate stage (an sft model is there)")
    ap.add_argument("-S", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="a params override for every stage (tooltune stage -S), e.g. ingest.voice_twins=0")
    args = ap.parse_args()
    workdir = args.workdir.resolve()
    params = write_workdir(workdir, args.records, args.steps, args.seed)
    tooltune = [str(Path(sys.executable).parent / "tooltune")]
    subprocess.run(tooltune + ["ingest", "--source", "openai", "--path",
                                   "data/imports/plant_handwritten_openai.jsonl", "--domain", "plant", "--out",
                                   "data/imports/plant_handwritten.jsonl", "--params", str(params)],
                   cwd=workdir, check=True)
    stages = ["evaluate"] if args.skip_train else ["base", "ingest", "validate", "build", "sft", "evaluate"]
    for stage in stages:
        print(f"== {stage}", flush=True)
        sets = [arg for override in args.overrides for arg in ("-S", override)]
        subprocess.run(tooltune + ["stage", stage, "--params", str(params), *sets], cwd=workdir, check=True)
    print((workdir / "reports" / "evaluate.md").read_text())


if __name__ == "__main__":
    main()
