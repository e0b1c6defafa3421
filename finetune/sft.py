"""LoRA / QLoRA supervised fine-tuning with trl's SFTTrainer.

    python -m finetune.sft finetune/configs/default.yaml [key=value ...]

Reads top to bottom: load config -> build data -> load base -> train -> evaluate -> save adapter.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from finetune.config import RunConfig, load_config
from finetune.data.dataset import load_jsonl
from finetune.distributed import is_main_process, wait_for_everyone


def build_prompt_completion(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Split each chat into prompt (system + user) and completion (assistant) for completion-only loss."""
    rows = []
    for record in records:
        messages = record["messages"]
        if not messages or messages[-1]["role"] != "assistant":
            raise ValueError(f"record {record.get('id')}: last message must be the assistant's")
        rows.append({"prompt": messages[:-1], "completion": messages[-1:]})
    return rows


def _device_note(want_qlora: bool) -> tuple[bool, str]:
    import torch

    if torch.cuda.is_available():
        return (
            want_qlora,
            f"CUDA ({torch.cuda.get_device_name(0)}): {'QLoRA 4-bit NF4' if want_qlora else 'LoRA'}",
        )
    note = "no CUDA: running LoRA in fp32 on the CPU"
    if want_qlora:
        note += " (QLoRA's 4-bit NF4 base needs CUDA through bitsandbytes)"
    return False, note


def probe_cpu_precision(size: int = 768, repeats: int = 3) -> tuple[str, float]:
    """bf16 or fp32 for CPU training, by timing one training-sized matmul each way.

    bf16 autocast trained 1.55x faster on a CPU with AMX and far slower on one without, so the
    choice is measured, not read off the device type. Returns the winner and the bf16 speed-up.
    """
    import torch

    def best(dtype: torch.dtype) -> float:
        a = torch.randn(2 * size, size, dtype=dtype)
        b = torch.randn(size, 2 * size, dtype=dtype)
        a @ b  # warm-up: first calls pick kernels
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - start)
        return min(times)

    speedup = best(torch.float32) / best(torch.bfloat16)
    return ("bf16" if speedup > 1.2 else "fp32"), round(speedup, 2)


class _JsonlLog:
    """Appends every log dict the trainer emits to a JSONL file."""

    def __init__(self, path: Path) -> None:
        from transformers import TrainerCallback

        self.path = path
        outer = self

        class _Callback(TrainerCallback):
            def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
                if logs:
                    with outer.path.open("a", encoding="utf-8") as handle:
                        handle.write(
                            json.dumps({"step": state.global_step, "time": time.time(), **logs}) + "\n"
                        )

        self.callback = _Callback()


def _logged_eval_before(log: Path) -> float | None:
    if not log.exists():
        return None
    for line in log.read_text("utf-8").splitlines():
        row = json.loads(line)
        if row.get("step") == 0 and "eval_loss" in row:
            return float(row["eval_loss"])
    return None


def run_sft(cfg: RunConfig) -> dict[str, Any]:
    """Train a LoRA adapter; returns eval losses before and after and where the adapter is."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    from finetune.base import load_base

    out_dir = Path(cfg.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    import os

    os.environ.setdefault("TENSORBOARD_LOGGING_DIR", str(out_dir / "tensorboard"))
    data_dir = Path(cfg.data.out_dir)
    train_rows = build_prompt_completion(load_jsonl(data_dir / "train.jsonl"))
    val_rows = build_prompt_completion(load_jsonl(data_dir / "val.jsonl"))[: cfg.sft.eval_samples]
    if cfg.sft.train_samples:
        train_rows = train_rows[: cfg.sft.train_samples]
    use_qlora, note = _device_note(cfg.sft.qlora)
    cpu_bf16 = False
    if not torch.cuda.is_available():
        precision: str = cfg.sft.precision
        speedup: float | None = None
        if precision == "auto":
            precision, speedup = probe_cpu_precision()
        cpu_bf16 = precision == "bf16"
        note += f"; precision {precision}" + (f" (probe: bf16 matmul {speedup}x fp32)" if speedup else "")
    print(f"sft: {note}; {len(train_rows)} train / {len(val_rows)} val examples", file=sys.stderr)
    torch.manual_seed(cfg.seed)
    model, tokenizer = load_base(cfg.base)
    if use_qlora:  # reload the clean base in 4-bit NF4 (CUDA only)
        import tempfile

        from transformers import AutoModelForCausalLM, BitsAndBytesConfig

        from finetune.base import save_clean_pretrained

        tmp = Path(tempfile.mkdtemp(prefix="daydream-base-"))
        save_clean_pretrained(model, tokenizer, tmp)
        bnb = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16
        )
        model = AutoModelForCausalLM.from_pretrained(tmp, quantization_config=bnb)
    lora = LoraConfig(
        r=cfg.sft.lora_r,
        lora_alpha=cfg.sft.lora_alpha,
        lora_dropout=cfg.sft.lora_dropout,
        target_modules=cfg.sft.target_modules,
        task_type="CAUSAL_LM",
    )
    args = SFTConfig(
        output_dir=str(out_dir / "checkpoints"),
        num_train_epochs=cfg.sft.epochs,
        max_steps=cfg.sft.max_steps,
        per_device_train_batch_size=cfg.sft.batch_size,
        per_device_eval_batch_size=cfg.sft.batch_size,
        gradient_accumulation_steps=cfg.sft.grad_accum,
        learning_rate=cfg.sft.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=cfg.sft.warmup_steps,
        logging_steps=cfg.sft.logging_steps,
        save_strategy="steps",
        save_steps=cfg.sft.save_steps,
        save_total_limit=2,
        eval_strategy="steps" if cfg.sft.eval_steps else "no",
        eval_steps=cfg.sft.eval_steps,
        load_best_model_at_end=bool(cfg.sft.early_stopping_patience),
        metric_for_best_model="eval_loss" if cfg.sft.early_stopping_patience else None,
        greater_is_better=False if cfg.sft.early_stopping_patience else None,
        neftune_noise_alpha=cfg.sft.neftune_noise_alpha,
        max_length=cfg.sft.max_length,
        gradient_checkpointing=cfg.sft.gradient_checkpointing,
        completion_only_loss=True,
        report_to=["tensorboard"],
        seed=cfg.seed,
        use_cpu=not torch.cuda.is_available(),
        bf16=use_qlora or cpu_bf16,
        dataloader_num_workers=0,
        disable_tqdm=not cfg.progress,
    )
    callbacks: list[Any] = [_JsonlLog(out_dir / "train_log.jsonl").callback] if is_main_process() else []
    if cfg.sft.early_stopping_patience:
        from transformers import EarlyStoppingCallback

        callbacks.append(EarlyStoppingCallback(early_stopping_patience=cfg.sft.early_stopping_patience))
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(train_rows),
        eval_dataset=Dataset.from_list(val_rows),
        processing_class=tokenizer,
        peft_config=lora,
        callbacks=callbacks,
    )
    resume = cfg.sft.resume
    if resume == "auto":
        checkpoints = sorted(
            (out_dir / "checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1])
        )
        resume = str(checkpoints[-1]) if checkpoints else None
    before = _logged_eval_before(out_dir / "train_log.jsonl") if resume else None
    if before is None:  # a resumed run reuses the loss measured before its first step
        before = trainer.evaluate()["eval_loss"]
    print(f"sft: eval loss before training {before:.4f}", file=sys.stderr)
    started = time.time()
    result = trainer.train(resume_from_checkpoint=resume or None)
    after = trainer.evaluate()["eval_loss"]
    adapter_dir = out_dir / "adapter"
    trained: Any = trainer.model
    if is_main_process():
        trained.save_pretrained(adapter_dir)
        tokenizer.save_pretrained(adapter_dir)
    summary = {
        "eval_loss_before": before,
        "eval_loss_after": after,
        "train_loss": result.training_loss,
        "steps": result.global_step,
        "train_seconds": round(time.time() - started, 1),
        "train_examples": len(train_rows),
        "device": note,
        "curve": validation_curve(out_dir / "train_log.jsonl"),
        "processes": trainer.args.world_size,  # a step takes batch_size x grad_accum x processes
        "adapter_dir": str(adapter_dir),
    }
    if resume:  # the seconds and the mean train loss above cover only this session's steps
        summary["resumed_from"] = Path(resume).name
    if is_main_process():
        (out_dir / "sft_summary.json").write_text(json.dumps(summary, indent=2), "utf-8")
        print(f"sft: eval loss {before:.4f} -> {after:.4f}; adapter in {adapter_dir}", file=sys.stderr)
    wait_for_everyone()  # DPO and export read the adapter the main process just wrote
    return summary


def validation_curve(log: Path) -> list[dict[str, float]]:
    """(step, epoch, eval_loss) of every validation measure in a run's train_log.jsonl."""
    if not log.exists():
        return []
    rows = [json.loads(line) for line in log.read_text("utf-8").splitlines() if line.strip()]
    return [
        {
            "step": r["step"],
            "epoch": round(float(r.get("epoch", 0.0)), 3),
            "eval_loss": round(r["eval_loss"], 4),
        }
        for r in rows
        if "eval_loss" in r
    ]


def finalize_checkpoint(cfg: RunConfig, step: int) -> dict[str, Any]:
    """Finish a run that was stopped early: adopt ``checkpoint-<step>`` as the run's adapter.

    Measures the checkpoint's validation loss the same way ``run_sft`` does and writes the same
    summary, saying how far through the planned schedule the run got.
    """
    import shutil

    import torch
    from datasets import Dataset
    from peft import PeftModel
    from trl import SFTConfig, SFTTrainer

    from finetune.base import load_base

    out_dir = Path(cfg.output_dir)
    checkpoint = out_dir / "checkpoints" / f"checkpoint-{step}"
    state = json.loads((checkpoint / "trainer_state.json").read_text("utf-8"))
    val_rows = build_prompt_completion(load_jsonl(Path(cfg.data.out_dir) / "val.jsonl"))[
        : cfg.sft.eval_samples
    ]
    model, tokenizer = load_base(cfg.base)
    model = PeftModel.from_pretrained(model, str(checkpoint))
    args = SFTConfig(
        output_dir=str(out_dir / "final-eval"),
        per_device_eval_batch_size=cfg.sft.batch_size,
        max_length=cfg.sft.max_length,
        completion_only_loss=True,
        report_to=[],
        use_cpu=not torch.cuda.is_available(),
        disable_tqdm=True,
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(val_rows[:1]),  # trl requires one
        eval_dataset=Dataset.from_list(val_rows),
        processing_class=tokenizer,
    )
    after = trainer.evaluate()["eval_loss"]
    adapter_dir = out_dir / "adapter"
    shutil.rmtree(adapter_dir, ignore_errors=True)
    model.save_pretrained(str(adapter_dir))
    losses = [h["loss"] for h in state["log_history"] if "loss" in h]
    log_rows = [json.loads(line) for line in (out_dir / "train_log.jsonl").read_text("utf-8").splitlines()]
    times = [r["time"] for r in log_rows if r.get("step", 0) <= step]
    examples_seen = step * cfg.sft.batch_size * cfg.sft.grad_accum
    summary = {
        "eval_loss_before": _logged_eval_before(out_dir / "train_log.jsonl"),
        "eval_loss_after": after,
        "train_loss": losses[-1] if losses else None,
        "steps": step,
        "planned_steps": state.get("max_steps"),
        "examples_seen": examples_seen,
        "train_examples": len(load_jsonl(Path(cfg.data.out_dir) / "train.jsonl")),
        "stopped_early": f"adopted checkpoint-{step} of {state.get('max_steps')} planned steps",
        "train_seconds": round(max(times) - min(times), 1) if times else None,
        "device": "cpu (2 cores)" if not torch.cuda.is_available() else "cuda",
        "adapter_dir": str(adapter_dir),
    }
    (out_dir / "sft_summary.json").write_text(json.dumps(summary, indent=2), "utf-8")
    print(f"sft: checkpoint-{step}: eval loss {summary['eval_loss_before']} -> {after:.4f}", file=sys.stderr)
    return summary


def main(argv: list[str] | None = None) -> int:
    """Run SFT from a YAML config with key=value overrides (or adopt a checkpoint)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m finetune.sft", description=__doc__)
    parser.add_argument("config")
    parser.add_argument("overrides", nargs="*")
    parser.add_argument("--from-checkpoint", type=int, default=None, help="adopt checkpoint-N as the result")
    args = parser.parse_args(argv)
    cfg = load_config(args.config, args.overrides)
    if args.from_checkpoint is not None:
        finalize_checkpoint(cfg, args.from_checkpoint)
    else:
        run_sft(cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
