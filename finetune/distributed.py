"""Several training processes (``accelerate launch``): which one writes files, and waiting for it.

    accelerate launch --multi_gpu --num_processes 2 -m daydream finetune run finetune/configs/default.yaml

Under ``accelerate launch`` every process runs the whole recipe. The trainers share the steps (DDP:
each process takes its slice of every batch), but files (data, DPO pairs, adapters, summaries, the
exported model) are written by the main process only, and the others wait for them. A single
process (plain ``daydream finetune run``) never touches torch.distributed.
"""

from __future__ import annotations

import os
from typing import Any


def world_size() -> int:
    """How many processes the launcher started (1 without a launcher)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def _state() -> Any:
    import torch
    from accelerate import PartialState

    # the same process group the trainers use: gloo on CPU, nccl on CUDA
    return PartialState(cpu=not torch.cuda.is_available())


def is_main_process() -> bool:
    """True in the process that writes files (always, without a launcher)."""
    if world_size() == 1:
        return True
    return bool(_state().is_main_process)


def wait_for_everyone() -> None:
    """Barrier: every process waits here until all have arrived (no-op without a launcher)."""
    if world_size() > 1:
        _state().wait_for_everyone()
