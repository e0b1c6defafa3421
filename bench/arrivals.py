"""Decisions that arrive one by one, as in a game: whole batches against continuous batching.

    python -m bench.arrivals [--model default] [--rate 0.4] [--seconds 60] [--rounds 1]
                             [--max-batch 8 16] [--quick]

Every setting gets the same arrival schedule (exponential gaps at ``rate`` per second, a fixed
seed, public cases in turn, each ticket a different character's situation) for ``seconds``, then
waits for the last answer. Settings run one after another in one process, their order reversed
each round, after a warm-up. Measured: answer latency p50/p95 (submit to answer), how many the model answered, and
decisions per second over the whole run. Prints a table and writes bench/results/arrivals-<model>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import time
from pathlib import Path
from typing import Any

from bench.decisions import load_cases, table
from engine.backends.llamacpp import LlamaCppBackend
from engine.models import load_backend
from engine.service import DecisionService
from engine.stats import percentile

RESULTS = Path(__file__).parent / "results"


def schedule(rate: float, seconds: float, seed: int = 0) -> list[float]:
    """Arrival times in seconds from the start: exponential gaps at ``rate`` per second."""
    rng = random.Random(seed)
    times, now = [], 0.0
    while True:
        now += rng.expovariate(rate)
        if now >= seconds:
            return times
        times.append(now)


def run_setting(
    backend: LlamaCppBackend, cases: list[Any], arrivals: list[float], *, continuous: bool, max_batch: int
) -> dict[str, Any]:
    """Submit on the schedule, wait for every answer; latencies come from the service's clock."""
    backend.clear_prefix_cache()
    service = DecisionService(backend, max_batch=max_batch, continuous=continuous, cache_size=0)
    tickets = []
    start = time.perf_counter()
    for i, at in enumerate(arrivals):
        time.sleep(max(0.0, start + at - time.perf_counter()))
        case = cases[i % len(cases)]
        tickets.append(service.submit(case.profile, case.situation, seed=i))
    results = [ticket.result() for ticket in tickets]
    elapsed = time.perf_counter() - start
    service.close()
    latencies = [r.latency_ms for r in results]
    return {
        "batching": "continuous" if continuous else "whole",
        "max_batch": max_batch,
        "decisions": len(results),
        "model": sum(r.source in ("model", "retry") for r in results),
        "p50_ms": percentile(latencies, 50),
        "p95_ms": percentile(latencies, 95),
        "max_ms": max(latencies, default=0.0),
        "decisions_per_s": len(results) / elapsed,
        "elapsed_s": elapsed,
    }


def main(argv: list[str] | None = None) -> int:
    """Run every setting on one schedule and print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="default")
    parser.add_argument("--cases", type=Path, default=Path("finetune/data/public_cases.jsonl"))
    parser.add_argument("--rate", type=float, default=0.4, help="arrivals per second")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long tickets keep arriving")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--max-batch", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--quick", action="store_true", help="a tiny setting: checks that the code runs")
    args = parser.parse_args(argv)
    if args.quick:
        args.rate, args.seconds, args.rounds, args.max_batch = 2.0, 2.0, 1, [2]
    cases = load_cases(args.cases)
    backend = load_backend(args.model)
    assert isinstance(backend, LlamaCppBackend), "benchmarks need a GGUF model"
    arrivals = schedule(args.rate, args.seconds)
    warm = DecisionService(backend, cache_size=0)  # first-use work (steering tables) out of the rows
    for i, case in enumerate(cases[:4]):
        warm.submit(case.profile, case.situation, seed=10_000 + i).result()
    warm.close()
    settings = [(c, b) for b in args.max_batch for c in (False, True)]
    rows: list[dict[str, Any]] = []
    for round_no in range(args.rounds):
        order = settings if round_no % 2 == 0 else settings[::-1]
        for continuous, max_batch in order:
            row = run_setting(backend, cases, arrivals, continuous=continuous, max_batch=max_batch)
            rows.append({"round": round_no + 1, **row})
            print(
                f"round {round_no + 1}: {row['batching']} x{max_batch}: p50 {row['p50_ms']:.0f} ms",
                flush=True,
            )
    backend.close()
    machine = f"{platform.machine()}, {os.cpu_count()} cores"
    print(
        "\n"
        + table(
            f"{len(arrivals)} decisions arriving at {args.rate}/s for {args.seconds:.0f} s on {args.model} ({machine})",
            ["round", "batching", "max batch", "model", "p50 ms", "p95 ms", "max ms", "decisions/s"],
            [
                [
                    r["round"],
                    r["batching"],
                    r["max_batch"],
                    f"{r['model']}/{r['decisions']}",
                    r["p50_ms"],
                    r["p95_ms"],
                    r["max_ms"],
                    r["decisions_per_s"],
                ]
                for r in rows
            ],
        )
    )
    RESULTS.mkdir(exist_ok=True)
    name = args.model.replace("/", "_") + ("-quick" if args.quick else "")
    path = RESULTS / f"arrivals-{name}.json"
    out = {"model": args.model, "machine": machine, "rate": args.rate, "seconds": args.seconds,
           "arrivals": len(arrivals), "rows": rows}  # fmt: skip
    path.write_text(json.dumps(out, indent=2), "utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
