"""DPO after SFT with trl's DPOTrainer: keep training the SFT adapter on preference pairs.

    python -m finetune.dpo finetune/configs/default.yaml dpo.enabled=true [key=value ...]

The reference model is the SFT model (base + SFT adapter, merged), not the raw base, so DPO only
moves the policy away from the rejected answers relative to what SFT already learned. The result is
still one LoRA adapter, which keeps the registry's base + adapter build simple.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from finetune.config import RunConfig, load_config
from finetune.data.dataset import load_jsonl, save_jsonl
from finetune.data.generator import Example
from finetune.data.preferences import DEGRADATIONS, build_preference_pairs, draw_chosen
from finetune.distributed import is_main_process, wait_for_everyone


def weakness(text: str, example: Example, threshold: float) -> str | None:
    """Why an answer to ``example`` is weak, or None: invalid (naming included), naming people the
    prompt never mentions, carrying a stock phrase, answering the situation in fewer than two
    purposes, or not distinct enough."""
    from engine.prompt import build_user_message
    from engine.validation import InvalidOutput, parse_motivation
    from finetune.metrics import distinctness, grounded, has_stock_phrase, invented_names, moment_text

    try:
        purposes = parse_motivation(text, example.profile.name).purposes()
    except InvalidOutput as err:
        return err.stage
    moment = moment_text(example.situation)
    if invented_names(purposes, build_user_message(example.profile, example.situation)):
        return "invented_name"
    if any(has_stock_phrase(p) for p in purposes):
        return "stock"
    if sum(grounded(p, moment, example.profile.name) for p in purposes) < 2:
        return "ungrounded"
    if distinctness(purposes, example.profile.name) < threshold:
        return "not_distinct"
    return None


def find_weak_answers(
    model: str, examples: list[Example], threshold: float, seed: int = 0
) -> tuple[dict[str, str], dict[str, int]]:
    """A model's own answers that fall short (see ``weakness``). These make on-policy rejected
    sides for DPO: they are the mistakes this model actually makes, not ones it has already
    unlearned."""
    from engine.models import load_backend
    from engine.request import DecisionRequest, Sampling

    backend = load_backend(model)
    weak: dict[str, str] = {}
    reasons: dict[str, int] = {}
    batch = 16
    for start in range(0, len(examples), batch):
        chunk = examples[start : start + batch]
        requests = [
            DecisionRequest(ex.profile, ex.situation, Sampling(temperature=0.7, seed=seed + start + i, max_new_tokens=256))
            for i, ex in enumerate(chunk)
        ]  # fmt: skip
        for ex, raw in zip(chunk, backend.generate(requests), strict=True):
            reason = "backend" if raw.error else weakness(raw.text, ex, threshold)
            if reason is None:
                continue
            weak[ex.id] = raw.text
            reasons[reason] = reasons.get(reason, 0) + 1
        print(
            f"dpo: {model} answered {start + len(chunk)}/{len(examples)}; weak so far {reasons}",
            file=sys.stderr,
        )
    getattr(backend, "close", lambda: None)()
    return weak, reasons


def chosen_pool(cfg: RunConfig, train_examples: list[Example]) -> list[Example]:
    """The examples whose references may be chosen sides."""
    if cfg.dpo.chosen_from == "corpus":
        return [ex for ex in train_examples if ex.meta.get("source") == "corpus"]
    return train_examples


def collect_weak_answers(cfg: RunConfig, pool: list[Example]) -> tuple[dict[str, str], dict[str, int]]:
    """The rejected model's weak answers for the first ``own_share`` of the chosen examples.

    Read from ``dpo.rejected_file`` when it exists (collected earlier, perhaps on another machine);
    otherwise asked of ``dpo.rejected_model`` through llama.cpp and saved there for the next run.
    """
    if not cfg.dpo.rejected_model and not cfg.dpo.rejected_file:
        return {}, {}
    path = Path(cfg.dpo.rejected_file) if cfg.dpo.rejected_file else None
    if path is not None and path.exists():
        rows = [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]
        by_id = {ex.id: ex for ex in pool}
        reasons: dict[str, int] = {}
        for row in rows:
            ex = by_id.get(row["id"])
            why = (weakness(row["text"], ex, cfg.dpo.rejected_threshold) if ex else None) or "kept"
            reasons[why] = reasons.get(why, 0) + 1
        return {row["id"]: row["text"] for row in rows}, reasons
    if not cfg.dpo.rejected_model:
        raise FileNotFoundError(f"dpo.rejected_file {path} does not exist and no dpo.rejected_model is set")
    chosen = draw_chosen(pool, cfg.dpo.pairs, seed=cfg.seed)
    asked = chosen[: round(len(chosen) * cfg.dpo.own_share)]
    weak, reasons = find_weak_answers(
        cfg.dpo.rejected_model, asked, cfg.dpo.rejected_threshold, seed=cfg.seed
    )
    if path is not None:
        save_jsonl(path, ({"id": k, "text": v} for k, v in weak.items()))
    return weak, reasons


def run_dpo(cfg: RunConfig, sft_adapter: Path, train_examples: list[Example]) -> dict[str, Any]:
    """Continue the SFT adapter with DPO; returns a summary with the new adapter's path."""
    import copy

    import torch
    from datasets import Dataset
    from peft import PeftModel
    from trl import DPOConfig, DPOTrainer

    from finetune.base import load_base

    out_dir = Path(cfg.output_dir) / "dpo"
    out_dir.mkdir(parents=True, exist_ok=True)
    weak: dict[str, str] = {}
    weak_reasons: dict[str, int] = {}
    if is_main_process():  # the others train on the pairs it writes (accelerate launch)
        pool = chosen_pool(cfg, train_examples)
        weak, weak_reasons = collect_weak_answers(cfg, pool)
        pairs = build_preference_pairs(
            pool, cfg.dpo.pairs, seed=cfg.seed, base_outputs=weak, model_kind="own_output",
            kinds=cfg.dpo.kinds or DEGRADATIONS,
        )  # fmt: skip
        save_jsonl(out_dir / "pairs.jsonl", pairs)
    wait_for_everyone()
    if not is_main_process():
        pairs = load_jsonl(out_dir / "pairs.jsonl")
    kinds: dict[str, int] = {}
    for pair in pairs:
        kinds[pair["kind"]] = kinds.get(pair["kind"], 0) + 1
    print(f"dpo: {len(pairs)} pairs {kinds}", file=sys.stderr)
    torch.manual_seed(cfg.seed)
    base, tokenizer = load_base(cfg.base)
    reference = PeftModel.from_pretrained(copy.deepcopy(base), str(sft_adapter)).merge_and_unload().eval()
    policy = PeftModel.from_pretrained(base, str(sft_adapter), is_trainable=True)
    args = DPOConfig(
        output_dir=str(out_dir / "checkpoints"),
        beta=cfg.dpo.beta,
        num_train_epochs=cfg.dpo.epochs,
        max_steps=cfg.dpo.max_steps,
        per_device_train_batch_size=cfg.dpo.batch_size,
        gradient_accumulation_steps=cfg.dpo.grad_accum,
        learning_rate=cfg.dpo.learning_rate,
        lr_scheduler_type="cosine",
        logging_steps=1,  # DPO runs are short; every step's reward accuracy is worth seeing
        save_strategy="no",
        max_length=cfg.sft.max_length,
        gradient_checkpointing=cfg.sft.gradient_checkpointing,  # trl turns it on by default: ~30% slower on CPU
        report_to=[],
        seed=cfg.seed,
        use_cpu=not torch.cuda.is_available(),
        # trl defaults bf16 on; on a CPU without bf16 matrix units that made a 2-pair step 9x slower (196 s vs 22 s)
        bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
        disable_tqdm=not cfg.progress,
    )
    trainer = DPOTrainer(
        model=policy,
        ref_model=reference,
        args=args,
        train_dataset=Dataset.from_list([{k: p[k] for k in ("prompt", "chosen", "rejected")} for p in pairs]),
        processing_class=tokenizer,
    )
    started = time.time()
    result = trainer.train()
    adapter_dir = out_dir / "adapter"
    trained: Any = trainer.model
    if is_main_process():
        trained.save_pretrained(adapter_dir)
        tokenizer.save_pretrained(adapter_dir)
    history = [h for h in trainer.state.log_history if "loss" in h]
    summary = {
        "pairs": len(pairs),
        "pair_kinds": kinds,
        "weak_own_answers": weak_reasons,
        "train_loss": result.training_loss,
        "steps": result.global_step,
        "reward_accuracy_last": history[-1].get("rewards/accuracies") if history else None,
        "train_seconds": round(time.time() - started, 1),
        "precision": "bf16" if args.bf16 else "fp32",
        "processes": trainer.args.world_size,
        "adapter_dir": str(adapter_dir),
    }
    if is_main_process():
        (out_dir / "dpo_summary.json").write_text(json.dumps(summary, indent=2), "utf-8")
    wait_for_everyone()  # export reads the adapter the main process just wrote
    return summary


def main(argv: list[str] | None = None) -> int:
    """Run DPO on the adapter of an SFT run described by a config (or only collect own answers)."""
    import argparse

    from finetune.data.dataset import examples_from_records

    parser = argparse.ArgumentParser(prog="python -m finetune.dpo", description=__doc__)
    parser.add_argument("config")
    parser.add_argument("overrides", nargs="*")
    parser.add_argument(
        "--collect-only", action="store_true",
        help="only ask dpo.rejected_model for its answers and write dpo.rejected_file (needs llama.cpp)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    cfg = load_config(args.config, args.overrides)
    train = examples_from_records(load_jsonl(Path(cfg.data.out_dir) / "train.jsonl"))
    if args.collect_only:
        weak, reasons = collect_weak_answers(cfg, chosen_pool(cfg, train))
        print(json.dumps({"weak": len(weak), "reasons": reasons, "file": cfg.dpo.rejected_file}))
        return 0
    print(json.dumps(run_dpo(cfg, Path(cfg.output_dir) / "adapter", train), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
