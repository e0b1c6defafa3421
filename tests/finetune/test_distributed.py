"""``daydream finetune run`` under ``accelerate launch``: 2 CPU processes (DDP over gloo) on the tiny llama."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from safetensors.numpy import load_file

from tests.conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

ACCELERATE = shutil.which("accelerate", path=os.path.dirname(sys.executable)) or shutil.which("accelerate")


def lora_b(adapter_dir):
    return {
        k: v.astype("float64")
        for k, v in load_file(str(adapter_dir / "adapter_model.safetensors")).items()
        if "lora_B" in k
    }


@pytest.mark.skipif(ACCELERATE is None, reason="accelerate is not installed (the finetune extra)")
def test_finetune_run_under_accelerate_launch_with_two_processes(tiny_base, tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(
        f"""
name: tiny
base: {tiny_base}
output_dir: {tmp_path / "run"}
progress: false
data: {{n: 40, seed: 3, out_dir: {tmp_path / "data"}}}
sft: {{max_steps: 2, batch_size: 2, grad_accum: 1, eval_samples: 4, save_steps: 1, learning_rate: 0.005,
      warmup_steps: 0, max_length: 384, resume: null}}
dpo: {{enabled: true, pairs: 4, max_steps: 1, batch_size: 2, grad_accum: 1}}
export: {{register_as: null}}
""",
        encoding="utf-8",
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    run = subprocess.run(
        [str(ACCELERATE), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
         "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0",
         "-m", "daydream", "finetune", "run", str(config)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=280,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-4000:]
    out = tmp_path / "run"
    sft = json.loads((out / "sft_summary.json").read_text())
    dpo = json.loads((out / "dpo" / "dpo_summary.json").read_text())
    assert sft["processes"] == 2 and dpo["processes"] == 2  # the trainers saw a world of two (DDP)
    assert sft["steps"] == 2 and dpo["steps"] == 1 and dpo["pairs"] == 4
    # files are written once, by the main process: one log line per logged step, one summary
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert len(log) == len({json.dumps(row, sort_keys=True) for row in log})
    assert run.stdout.count("total seconds") == 1
    # training moved the weights: LoRA B starts at zero, SFT moved it, DPO moved it again
    after_sft, after_dpo = lora_b(out / "adapter"), lora_b(out / "dpo" / "adapter")
    assert after_sft and all((v**2).sum() > 0 for v in after_sft.values())
    assert any(abs(after_dpo[k] - after_sft[k]).max() > 0 for k in after_sft)
