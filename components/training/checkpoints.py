"""Checkpoints of the training stages (sft, reward_model, rl): saved every `save_steps` while training, resumed
when the stage runs again after a kill, deleted once the stage's model is saved.

Layout: `<paths.checkpoints>/<stage>/` is the trainer's `output_dir`. It holds `run.json` (the key of the run
inputs) and transformers' `checkpoint-N/` folders (weights or LoRA adapter, optimizer, scheduler, RNG states,
`trainer_state.json`). transformers writes a checkpoint in place, file by file, so a kill mid-save leaves a
partial folder. A checkpoint counts as complete only once it holds `tooltune-complete.json`, which `sealer()`
writes from `on_save` (transformers calls it after `_save_checkpoint` returned), after syncing every file of the
folder to disk; only then are the older checkpoints deleted, so from the first save on one complete checkpoint
always exists. A folder without the marker is never resumed: `start` deletes it.

The key is a SHA-256 over what the trained model depends on: the stage's params section (less `save_steps`,
which changes no weight), the seed, the base model's name, the domain, the training data file's bytes, the start
model's files, the torch, transformers and TRL versions, and the number of processes when more than one. A
checkpoint folder under another key is deleted, never resumed: changed params or inputs start fresh. The folder is not hidden and holds no scratch names, so the
`sweep_stale` of every stage start leaves it alone (it removes only a killed marker write's scratch file).
Reads and writes: `<paths.checkpoints>/<stage>/`.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

from components import distributed
from components.config import Params, stage_params
from components.data.fileio import file_sha256, fsync_tree, write_json

MARKER = "tooltune-complete.json"  # written last, atomically: the checkpoint beside it is complete
RUN_FILE = "run.json"
NOT_KEYED = ("save_steps",)  # params that change when checkpoints are written, not what is trained
_NAME = re.compile(r"^checkpoint-(\d+)$")


def folder(params: Params, stage: str) -> Path:
    """The stage's checkpoint folder (the trainer's `output_dir`)."""
    return params.path("checkpoints") / stage


def trainer_args(params: Params, stage: str, save_steps: int) -> dict[str, Any]:
    """The `TrainingArguments` fields for checkpoints every `save_steps` (0: none) into `folder(params, stage)`.

    `save_total_limit` stays off: transformers would delete the older checkpoints before `sealer` marks the new
    one complete; `sealer` deletes them after.
    """
    args: dict[str, Any] = {"output_dir": str(folder(params, stage)), "save_total_limit": None,
                            "save_strategy": "steps" if save_steps else "no"}
    if save_steps:
        args["save_steps"] = save_steps
    return args


def run_key(params: Params, stage: str, inputs: list[Path]) -> str:
    """The SHA-256 of the run inputs (see the module docstring); `inputs` are the data file and model folders."""
    import torch
    import transformers
    import trl

    section = {k: v for k, v in stage_params(params, stage).items() if k not in NOT_KEYED}
    # processes draw and split the batches: a run on another number of them is another run (1: the key as before)
    processes = [distributed.world_size()] if distributed.world_size() > 1 else []
    digest = hashlib.sha256(json.dumps(
        [stage, section, params.project.seed, params.project.domain, params.base.model,
         torch.__version__, transformers.__version__, trl.__version__, *processes], sort_keys=True,
        default=str).encode())
    for path in inputs:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if file.name != "tooltune.json":  # a description of the model (training settings), no weight
                digest.update(f"{file.relative_to(path) if path.is_dir() else file.name}\0".encode())
                digest.update(file_sha256(file).encode())
    return digest.hexdigest()


def start(params: Params, stage: str, inputs: list[Path]) -> Path | None:
    """Ready the stage's checkpoint folder for this run; returns the checkpoint to resume from, None to start fresh.

    A folder written under another key (other params or inputs) is deleted; so is every checkpoint other than the
    newest complete one (partial ones a kill mid-save left, older ones a kill before their deletion left). Under
    several processes rank 0 does this while the others wait, then they all resume from the same checkpoint.

    Args:
        params: The loaded params.
        stage: The training stage (its params section).
        inputs: The training data file and the start model folder(s), as the key covers them.
    """
    out = folder(params, stage)
    if not distributed.is_main():  # rank 0 readies the folder; the others resume from what it kept
        distributed.barrier()
        complete = sorted((_step(p), p) for p in out.iterdir() if _step(p) is not None and _complete(p))
        return complete[-1][1] if complete else None
    resume = _ready(out, run_key(params, stage, inputs), stage)
    distributed.barrier()
    return resume


def _ready(out: Path, key: str, stage: str) -> Path | None:
    """`start` in the writing process: a fresh folder under `key`, or the newest complete checkpoint alone kept."""
    if _stored_key(out) != key:
        if out.exists():
            _remove(out)
        out.mkdir(parents=True)
        write_json(out / RUN_FILE, {"stage": stage, "key": key})
        return None
    found = sorted((_step(p), p) for p in out.iterdir() if _step(p) is not None and p.is_dir())
    complete = [p for _, p in found if _complete(p)]
    resume = complete[-1] if complete else None
    for _, path in found:
        if path != resume:
            _remove(path)
    return resume


def resumed_step(checkpoint: Path | None) -> int:
    """The global step a run resumed at (0: fresh)."""
    return 0 if checkpoint is None else int(_step(checkpoint) or 0)  # from the name: it may be deleted by now


def train(trainer: Any, resume: Path | None) -> float:
    """Run `trainer` (from the checkpoint `resume` when given, see `start`); returns the training seconds."""
    trainer._total_train_tokens = last_logged(resume, "num_tokens")  # TRL restarts its count at 0 on resume
    started = time.time()
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    return time.time() - started


def last_logged(checkpoint: Path | None, key: str) -> float:
    """The last value of `key` in a checkpoint's logged history (0 when fresh or never logged)."""
    if checkpoint is None:
        return 0.0
    history = json.loads((checkpoint / "trainer_state.json").read_text())["log_history"]
    return next((h[key] for h in reversed(history) if key in h), 0.0)


def finish(params: Params, stage: str) -> None:
    """Delete the stage's checkpoints: its model is saved, nothing is left to resume."""
    out = folder(params, stage)
    if not distributed.is_main():
        return
    if out.exists():
        _remove(out)
    if out.parent.is_dir() and not any(out.parent.iterdir()):
        out.parent.rmdir()


def sealer() -> Any:
    """A `transformers.TrainerCallback` that marks each checkpoint complete after it is written, then deletes the
    older ones."""
    from transformers import TrainerCallback

    class Sealer(TrainerCallback):
        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if not state.is_world_process_zero:
                return
            out = Path(args.output_dir)
            new = out / f"checkpoint-{state.global_step}"
            fsync_tree(new)
            write_json(new / MARKER, {"step": state.global_step})
            for path in out.iterdir():
                if path != new and _step(path) is not None and path.is_dir():
                    _remove(path)

    return Sealer()


def _stored_key(out: Path) -> str | None:
    try:
        return json.loads((out / RUN_FILE).read_text())["key"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _step(path: Path) -> int | None:
    """The global step in a checkpoint's name `checkpoint-N`; None for other names."""
    match = _NAME.match(path.name)
    return int(match[1]) if match else None


def _complete(path: Path) -> bool:
    try:
        return json.loads((path / MARKER).read_text())["step"] == _step(path)
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _remove(path: Path) -> None:
    """Delete a folder: renamed to a scratch name first (which `sweep_stale` removes if a kill stops the deletion),
    so no partial folder is left under a name that could be resumed."""
    trash = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
    path.rename(trash)
    shutil.rmtree(trash)
