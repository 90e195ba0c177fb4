"""Which process of a multi-process launch this is (`torchrun`, `accelerate launch`): rank 0 alone writes.

A stage launched on N processes (DDP, DeepSpeed ZeRO, FSDP; infra/README.md) runs `run(params)` in every one:
each trains on its share of every batch, but only rank 0 takes the workdir lock, opens the MLflow run, writes
checkpoints' bookkeeping, reports, the model and `metrics/<stage>.json`. The other ranks wait at `barrier()`
where rank 0 writes what they read next. One process (no `WORLD_SIZE`, or 1): every helper is a no-op.

Reads: `$RANK`, `$WORLD_SIZE` (set by the launchers). Writes: nothing.
"""

from __future__ import annotations

import os


def world_size() -> int:
    """Number of processes of the launch (1 when not launched by torchrun / accelerate)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    """This process's global rank (0 when not launched by torchrun / accelerate)."""
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    """True in the process that writes outputs: rank 0, or the only process."""
    return rank() == 0


def barrier() -> None:
    """Wait until every rank reaches this point (no-op in one process).

    Starts the process group when the trainer has not yet (gloo on CPU, NCCL on GPU); accelerate, and so the
    trainers, reuse a group that is already up.
    """
    if world_size() <= 1:
        return
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))  # one GPU per process, as accelerate does
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if dist.get_backend() == "nccl":  # NCCL's barrier needs this rank's device, or it guesses one and warns
        dist.barrier(device_ids=[torch.cuda.current_device()])
    else:
        dist.barrier()
