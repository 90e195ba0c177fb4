"""tooltune pipeline steps: plain Python, one module per stage, no Prefect."""

# Pipeline order; each name is a module `components/<stage>.py`, a params.yaml section and a DVC stage.
STAGES = ("base", "ingest", "validate", "build", "sft", "reward_model", "rl", "evaluate", "register")
