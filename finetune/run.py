"""One command from config to registered model: data -> SFT -> (DPO) -> export -> evaluate.

daydream finetune run finetune/configs/default.yaml [key=value ...]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from finetune.config import RunConfig, load_config
from finetune.data.dataset import build_dataset
from finetune.data.generator import Example
from finetune.distributed import is_main_process, wait_for_everyone


def _stage(name: str) -> None:
    print(f"\n== {name} ==", file=sys.stderr)


def run_pipeline(cfg: RunConfig, *, skip_train: bool = False) -> dict[str, Any]:
    """Run every stage the config asks for; returns a summary (also written to output_dir)."""
    from finetune.sft import run_sft

    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"config": cfg.model_dump(mode="json")}
    started = time.time()

    main = is_main_process()  # under accelerate launch, only the main process writes files
    _stage("data")
    train_examples: list[Example] = []
    if main:
        splits, built = build_dataset(cfg.data, log=lambda line: print(line, file=sys.stderr))
        train_examples = splits["train"]
        summary["data"] = built["splits"]
        summary.update({f"data_{k}": v for k, v in built.items() if k != "splits"})
        print(f"data: {summary['data']} in {cfg.data.out_dir}", file=sys.stderr)
    wait_for_everyone()  # the others read the splits the main process wrote

    _stage("sft")
    adapter = out / "adapter"
    if skip_train and (adapter / "adapter_model.safetensors").exists():
        summary["sft"] = json.loads((out / "sft_summary.json").read_text("utf-8"))
    else:
        summary["sft"] = run_sft(cfg)

    if cfg.dpo.enabled:
        _stage("dpo")
        from finetune.dpo import run_dpo

        summary["dpo"] = run_dpo(cfg, adapter, train_examples)
        adapter = Path(summary["dpo"]["adapter_dir"])

    if not main:  # training is shared; export, evaluation and the summary are the main process's
        return summary
    if cfg.export.register_as:
        _stage("export")
        from finetune.export import export_model, update_metrics

        training: dict[str, Any] = {k: summary[k] for k in ("config", "data", "sft", "dpo") if k in summary}
        manifest = export_model(
            adapter, cfg.export.register_as, base_spec=cfg.base, quant=cfg.export.quant, training=training,
            adapter_dtype=cfg.export.adapter_dtype, decoding=cfg.export.decoding,
            progress=lambda s: print(f"export: {s}", file=sys.stderr),
        )  # fmt: skip
        summary["model_id"] = manifest.model_id

        _stage("evaluate")
        metrics = evaluate_registered(cfg, out / "eval" / cfg.export.register_as)
        update_metrics(cfg.export.register_as, metrics)
        summary["metrics"] = metrics
    summary["seconds"] = round(time.time() - started, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str), "utf-8")
    print_summary(summary)
    return summary


def evaluate_registered(cfg: RunConfig, out_dir: Path) -> dict[str, Any]:
    """Evaluate the registered model (and the base, when asked) on the test split and case files."""
    from engine.models import load_backend
    from finetune.evaluate import build_report, evaluate_models, load_eval_cases, save_outputs, save_plot

    assert cfg.export.register_as
    case_sets = {"test_split": load_eval_cases(Path(cfg.data.out_dir) / "test.jsonl", cfg.eval.test_samples)}
    for path in cfg.eval.cases:
        if Path(path).exists():
            case_sets[Path(path).stem] = load_eval_cases(Path(path)) * cfg.eval.case_samples
        else:
            print(f"evaluate: {path} not found; skipped", file=sys.stderr)
    models = {cfg.export.register_as: load_backend(cfg.export.register_as)}
    if cfg.eval.compare_base:
        models["base"] = load_backend(cfg.base if cfg.base.endswith(".gguf") else "base")
    metrics, details = evaluate_models(models, case_sets, seed=cfg.seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2), "utf-8")
    (out_dir / "report.md").write_text(build_report(metrics, details), "utf-8")
    save_outputs(details, out_dir / "outputs.jsonl")
    save_plot(metrics, out_dir / "metrics.png")
    return {
        "by_model": metrics,
        "summary": metrics[cfg.export.register_as].get(
            "public_cases", metrics[cfg.export.register_as]["test_split"]
        ),
    }


def print_summary(summary: dict[str, Any]) -> None:
    """A compact table of what the run did."""
    rows = [("examples (train/val/test)", "/".join(str(v) for v in summary.get("data", {}).values()))]
    sft = summary.get("sft", {})
    if sft:
        rows.append(
            ("eval loss before -> after", f"{sft['eval_loss_before']:.3f} -> {sft['eval_loss_after']:.3f}")
        )
        rows.append(("SFT steps / seconds", f"{sft['steps']} / {sft.get('train_seconds')}"))
        if sft.get("stopped_early"):
            rows.append(("stopped early", sft["stopped_early"]))
    if "dpo" in summary:
        rows.append(("DPO pairs / loss", f"{summary['dpo']['pairs']} / {summary['dpo']['train_loss']:.3f}"))
    if "model_id" in summary:
        rows.append(("registered", summary["model_id"]))
    for key, value in summary.get("metrics", {}).get("summary", {}).items():
        rows.append((key, str(value)))
    rows.append(("total seconds", str(summary.get("seconds"))))
    width = max(len(k) for k, _ in rows)
    print("\n" + "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows))


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``daydream finetune run``."""
    import argparse

    parser = argparse.ArgumentParser(prog="daydream finetune run", description=__doc__)
    parser.add_argument("config")
    parser.add_argument("overrides", nargs="*", help="section.key=value")
    parser.add_argument("--skip-train", action="store_true", help="reuse an existing adapter in output_dir")
    args = parser.parse_args(argv)
    run_pipeline(load_config(args.config, args.overrides), skip_train=args.skip_train)
    return 0


if __name__ == "__main__":
    sys.exit(main())
