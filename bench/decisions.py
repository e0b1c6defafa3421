"""Decision benchmarks, side by side in one run on one model and the same inputs.

    python -m bench.decisions [--model default] [--cases finetune/data/public_cases.jsonl] [--skip-hf]

Prints tables and writes bench/results/decisions-<model>.json. Asserts nothing about time.
1. single-decision latency p50/p95 with prompt/output tokens and tok/s
2. throughput with 1, 4, 8, 16 concurrent characters, ratio to sequential
3. the same decisions through transformers fp32 generate, ratio
4. grammar overhead: constrained against unconstrained per token, ratio
5. decode floor: raw llama_decode of the same token counts, our overhead as a ratio
6. frame stalls: a 60 FPS loop submitting decisions for 50 characters
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

from characters import Case, load_case
from engine.backends.llamacpp import LlamaCppBackend
from engine.models import load_backend
from engine.request import DecisionRequest, Sampling
from engine.service import DecisionService, QueueFull
from engine.stats import percentile

RESULTS = Path(__file__).parent / "results"


def load_cases(path: Path) -> list[Case]:
    """Cases from a JSONL file."""
    return [load_case(json.loads(line)) for line in path.read_text("utf-8").splitlines() if line.strip()]


def requests_for(cases: list[Case], n: int, seed: int = 0, **sampling: Any) -> list[DecisionRequest]:
    """``n`` requests cycling through the cases, each with its own seed."""
    return [
        DecisionRequest(
            cases[i % len(cases)].profile,
            cases[i % len(cases)].situation,
            Sampling(seed=seed + i, **sampling),
        )
        for i in range(n)
    ]


def table(title: str, headers: list[str], rows: list[list[Any]]) -> str:
    """A plain-text table."""
    cells = [headers, *[[f"{c:.2f}" if isinstance(c, float) else str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = [title, "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells[1:]]
    return "\n".join(lines)


def bench_single(backend: LlamaCppBackend, reqs: list[DecisionRequest]) -> dict[str, Any]:
    """One decision at a time."""
    latencies, prompt, output = [], [], []
    for req in reqs:
        start = time.perf_counter()
        raw = backend.generate([req])[0]
        latencies.append((time.perf_counter() - start) * 1000)
        prompt.append(raw.prompt_tokens)
        output.append(raw.output_tokens)
    total_s = sum(latencies) / 1000
    return {
        "p50_ms": percentile(latencies, 50), "p95_ms": percentile(latencies, 95),
        "prompt_tokens": statistics.fmean(prompt), "output_tokens": statistics.fmean(output),
        "tok_per_s": sum(output) / total_s, "decisions_per_s": len(reqs) / total_s,
        "prompt_lens": prompt, "output_lens": output,
    }  # fmt: skip


def bench_throughput(backend: LlamaCppBackend, cases: list[Case], n: int, concurrency: int) -> dict[str, Any]:
    """``n`` decisions through the service with batches of at most ``concurrency``."""
    service = DecisionService(backend, max_batch=concurrency, cache_size=0, max_queue=n + 1)
    reqs = requests_for(cases, n, seed=100)
    start = time.perf_counter()
    tickets = [service.submit(r.profile, r.situation, seed=r.sampling.seed) for r in reqs]
    results = [t.result() for t in tickets]
    elapsed = time.perf_counter() - start
    service.close()
    sources: dict[str, int] = {}
    for r in results:
        sources[r.source] = sources.get(r.source, 0) + 1
    return {"concurrency": concurrency, "decisions": n, "seconds": elapsed, "decisions_per_s": n / elapsed,
            "tok_per_s": sum(r.output_tokens for r in results) / elapsed, "sources": sources}  # fmt: skip


def bench_frames(
    backend: LlamaCppBackend, cases: list[Case], characters: int = 50, seconds: float = 10.0
) -> dict[str, Any]:
    """A 60 FPS loop: each frame submits for idle characters and polls; measures our blocking."""
    service = DecisionService(backend, max_batch=16, max_queue=characters + 1, cache_size=0)
    frame_budget = 1 / 60
    pending: dict[int, Any] = {}
    ours_ms, frames_ms = [], []
    answered = 0
    end = time.perf_counter() + seconds
    i = 0
    refused = 0
    while time.perf_counter() < end:
        frame_start = time.perf_counter()
        for ticket in service.poll():
            answered += 1
            for who, t in list(pending.items()):
                if t is ticket:
                    del pending[who]
        for who in range(characters):
            if who not in pending:
                case = cases[(who + i) % len(cases)]
                try:
                    pending[who] = service.submit(
                        case.profile, case.situation, seed=i * 100 + who, deadline_s=5.0
                    )
                except QueueFull:  # back-pressure: try again next frame
                    refused += 1
        ours = time.perf_counter() - frame_start
        ours_ms.append(ours * 1000)
        time.sleep(max(0.0, frame_budget - ours))  # the game "renders"
        frames_ms.append((time.perf_counter() - frame_start) * 1000)
        i += 1
    stats = service.stats()
    service.close()
    return {"frames": len(frames_ms), "frame_max_ms": max(frames_ms), "frame_p99_ms": percentile(frames_ms, 99),
            "ours_max_ms": max(ours_ms), "ours_p99_ms": percentile(ours_ms, 99), "answered": answered,
        "refused_queue_full": refused,
            "sources": stats.by_source}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Run every benchmark and print the tables."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="default")
    parser.add_argument("--cases", type=Path, default=Path("finetune/data/public_cases.jsonl"))
    parser.add_argument("--skip-hf", action="store_true", help="skip the transformers comparison")
    parser.add_argument("--frame-seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    cases = load_cases(args.cases)
    backend = load_backend(args.model)
    assert isinstance(backend, LlamaCppBackend), "benchmarks need a GGUF model"
    out: dict[str, Any] = {"model": backend.model_id, "machine": platform.processor() or platform.machine(),
                           "cases": str(args.cases), "n_cases": len(cases)}  # fmt: skip
    reqs = requests_for(cases, len(cases))

    single = bench_single(backend, reqs)
    out["single"] = {k: v for k, v in single.items() if not k.endswith("_lens")}
    print(table("1. single decision (one at a time)", ["p50 ms", "p95 ms", "prompt tok", "output tok", "tok/s"],
                [[single["p50_ms"], single["p95_ms"], single["prompt_tokens"], single["output_tokens"], single["tok_per_s"]]]))  # fmt: skip

    rows, through = [], []
    for c in (1, 4, 8, 16):
        r = bench_throughput(backend, cases, 16, c)
        through.append(r)
    base = through[0]["decisions_per_s"]
    for r in through:
        rows.append(
            [
                r["concurrency"],
                r["decisions_per_s"],
                r["tok_per_s"],
                r["decisions_per_s"] / base,
                r["sources"],
            ]
        )
    out["throughput"] = through
    print(
        "\n"
        + table(
            "2. throughput, 16 decisions",
            ["concurrent", "decisions/s", "tok/s", "x sequential", "sources"],
            rows,
        )
    )

    # same backend, grammar toggled: a second instance would bring a second thread team
    g_reqs = requests_for(cases, 6, max_new_tokens=96)
    timings = {}
    for label, use in (("grammar", True), ("no grammar", False)):
        backend.use_grammar = use
        start, toks = time.perf_counter(), 0
        for req in g_reqs:
            toks += backend.generate([req])[0].output_tokens
        timings[label] = (time.perf_counter() - start) / max(toks, 1) * 1000
    backend.use_grammar = True
    out["grammar"] = {"ms_per_token_grammar": timings["grammar"], "ms_per_token_free": timings["no grammar"],
                      "ratio": timings["grammar"] / timings["no grammar"]}  # fmt: skip
    print("\n" + table("4. grammar overhead (single sequence, includes prompt)", ["ms/tok grammar", "ms/tok free", "ratio"],
                       [[timings["grammar"], timings["no grammar"], timings["grammar"] / timings["no grammar"]]]))  # fmt: skip

    floor_rows = []
    sequential_floor = sum(
        backend.decode_floor([p], [o])
        for p, o in zip(single["prompt_lens"], single["output_lens"], strict=True)
    )
    ours_sequential = len(reqs) / single["decisions_per_s"]
    floor_rows.append(["1 at a time", ours_sequential, sequential_floor, ours_sequential / sequential_floor])
    batch = backend.generate(reqs)
    start = time.perf_counter()
    batch = backend.generate(reqs)
    ours_batch = time.perf_counter() - start
    floor_batch = backend.decode_floor([r.prompt_tokens for r in batch], [r.output_tokens for r in batch])
    floor_rows.append([f"{len(reqs)} batched", ours_batch, floor_batch, ours_batch / floor_batch])
    out["floor"] = [dict(zip(["mode", "ours_s", "floor_s", "ratio"], r, strict=True)) for r in floor_rows]
    print(
        "\n"
        + table(
            "5. decode floor (raw llama_decode, same token counts)",
            ["mode", "ours s", "floor s", "ratio"],
            floor_rows,
        )
    )

    frames = bench_frames(backend, cases, seconds=args.frame_seconds)
    out["frames"] = frames
    print("\n" + table("6. 60 FPS loop, 50 characters", ["frames", "frame max ms", "frame p99 ms", "ours max ms", "ours p99 ms", "answered"],
                       [[frames["frames"], frames["frame_max_ms"], frames["frame_p99_ms"], frames["ours_max_ms"], frames["ours_p99_ms"], frames["answered"]]]))  # fmt: skip

    # transformers runs last: torch's OpenMP threads keep spinning afterwards and slow llama.cpp
    if not args.skip_hf:
        from engine.backends.hf import TransformersBackend

        hf = TransformersBackend(backend.path.parent, gguf_file=backend.path.name, max_batch=1)
        hf_reqs = requests_for(cases, 4, max_new_tokens=200)
        start = time.perf_counter()
        hf_raws = hf.generate(hf_reqs)
        hf_s = time.perf_counter() - start
        hf_rate = len(hf_reqs) / hf_s
        best = max(r["decisions_per_s"] for r in through)
        out["transformers"] = {"decisions_per_s": hf_rate, "tok_per_s": sum(r.output_tokens for r in hf_raws) / hf_s,
                               "ours_best_decisions_per_s": best, "ratio": best / hf_rate}  # fmt: skip
        print("\n" + table("3. (run last: torch's threads keep spinning) transformers fp32 generate (same GGUF, dequantized), 4 decisions",
                           ["hf decisions/s", "hf tok/s", "ours best/s", "ratio"],
                           [[hf_rate, out["transformers"]["tok_per_s"], best, best / hf_rate]]))  # fmt: skip

    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"decisions-{args.model.replace('/', '_')}.json"
    path.write_text(json.dumps(out, indent=2, default=str), "utf-8")
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
