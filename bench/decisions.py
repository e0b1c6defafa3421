"""Decision benchmarks, side by side in one run on one model and the same inputs, before and after.

    python -m bench.decisions [--model default] [--cases finetune/data/public_cases.jsonl] [--skip-hf]
    python -m bench.decisions --quick --model base     # a tiny setting that checks the code runs

"before" is the decode path without the prompt cache, jump-forward, slot compaction and the thread
governor; "after" has all four (the engine's default). Both run on one backend, switched between rows, so there is
one llama.cpp thread team. Prints tables and writes bench/results/decisions-<model>.json.
Asserts nothing about time.
1. single-decision latency p50/p95 with prompt/output tokens and tok/s (a character's first decision)
   1b. a repeat decision for a character whose prompt is cached (same profile, new situation)
2. throughput with 1, 4, 8, 16 concurrent characters, ratio to sequential
3. the same decisions through transformers fp32 generate, ratio (run last)
4. grammar overhead: constrained against unconstrained per token, ratio
5. decode floor: raw llama_decode of the same token counts, our overhead as a ratio
6. frame stalls: a 60 FPS loop submitting decisions for 50 characters; in-thread and worker-process
   decoding, 2 and 1 llama.cpp threads, and in-thread with the decision cache on
7. the world pattern: 16 characters x several beats, a new situation each beat, with the prompt
   cache's hits per beat and a naive batched floor (no prefix reuse beyond the system prompt, one
   step per token) of the same token counts
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

from bench.world import world_beats
from characters import Case, load_case
from engine.backends.llamacpp import STEER_PENALTY, LlamaCppBackend
from engine.backends.worker import WorkerBackend
from engine.models import load_backend
from engine.request import DecisionRequest, Sampling
from engine.service import DecisionService, QueueFull
from engine.stats import percentile

RESULTS = Path(__file__).parent / "results"
MODES: dict[str, dict[str, Any]] = {
    "before": {
        "prefix_cache_mb": 0,
        "jump_forward": False,
        "compact_slots": False,
        "adaptive_threads": False,
    },
    "after": {"prefix_cache_mb": 256, "jump_forward": True, "compact_slots": True, "adaptive_threads": True},
}


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


def set_mode(backend: LlamaCppBackend | WorkerBackend, mode: str) -> None:
    """Switch the decode path to ``before`` or ``after``; either way the prompt cache starts empty."""
    options = MODES[mode]
    if isinstance(backend, WorkerBackend):
        backend.call("configure_decode", *options.values())
    else:
        backend.configure_decode(**options)


def bench_single(backend: LlamaCppBackend, reqs: list[DecisionRequest], mode: str) -> dict[str, Any]:
    """One decision at a time, each a character's first (the prompt cache emptied before each)."""
    latencies, prompt, output = [], [], []
    for req in reqs:
        set_mode(backend, mode)
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


def bench_repeat(backend: LlamaCppBackend, cases: list[Case], mode: str) -> dict[str, Any]:
    """A character's next decision (same profile, another situation) after a first one, timed."""
    set_mode(backend, mode)
    latencies, reused = [], []
    for i, case in enumerate(cases):
        nxt = cases[(i + 1) % len(cases)].situation
        backend.generate([DecisionRequest(case.profile, case.situation, Sampling(seed=i))])
        before = backend.stats()["prefix_cache"]["reused_tokens"]
        start = time.perf_counter()
        backend.generate([DecisionRequest(case.profile, nxt, Sampling(seed=i))])
        latencies.append((time.perf_counter() - start) * 1000)
        reused.append(backend.stats()["prefix_cache"]["reused_tokens"] - before)
    return {"p50_ms": percentile(latencies, 50), "p95_ms": percentile(latencies, 95),
            "reused_prompt_tokens": statistics.fmean(reused)}  # fmt: skip


def bench_throughput(
    backend: LlamaCppBackend, cases: list[Case], n: int, concurrency: int, mode: str
) -> dict[str, Any]:
    """``n`` decisions through the service with batches of at most ``concurrency``."""
    set_mode(backend, mode)
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
    return {"mode": mode, "concurrency": concurrency, "decisions": n, "seconds": elapsed,
            "decisions_per_s": n / elapsed, "tok_per_s": sum(r.output_tokens for r in results) / elapsed,
            "sources": sources}  # fmt: skip


def bench_grammar(backend: LlamaCppBackend, cases: list[Case], mode: str) -> dict[str, Any]:
    """Per-token cost with and without the grammar, one sequence at a time, prompt included."""
    g_reqs = requests_for(cases, 6, max_new_tokens=96)
    timings = {}
    for label, use in (("grammar", True), ("no grammar", False)):
        backend.use_grammar = use
        start, toks = time.perf_counter(), 0
        for req in g_reqs:
            set_mode(backend, mode)
            toks += backend.generate([req])[0].output_tokens
        timings[label] = (time.perf_counter() - start) / max(toks, 1) * 1000
    backend.use_grammar = True
    return {"mode": mode, "ms_per_token_grammar": timings["grammar"], "ms_per_token_free": timings["no grammar"],
            "ratio": timings["grammar"] / timings["no grammar"]}  # fmt: skip


def bench_floor(
    backend: LlamaCppBackend, reqs: list[DecisionRequest], single: dict[str, Any], mode: str
) -> list[dict[str, Any]]:
    """Our time (``single``: row 1's run) against raw llama_decode of the same token counts."""
    ours_sequential = len(reqs) / single["decisions_per_s"]
    sequential_floor = sum(
        backend.decode_floor([p], [o])
        for p, o in zip(single["prompt_lens"], single["output_lens"], strict=True)
    )
    set_mode(backend, mode)
    start = time.perf_counter()
    batch = backend.generate(reqs)
    ours_batch = time.perf_counter() - start
    floor_batch = backend.decode_floor([r.prompt_tokens for r in batch], [r.output_tokens for r in batch])
    return [
        {"mode": mode, "run": "1 at a time", "ours_s": ours_sequential, "floor_s": sequential_floor,
         "ratio": ours_sequential / sequential_floor},
        {"mode": mode, "run": f"{len(reqs)} batched", "ours_s": ours_batch, "floor_s": floor_batch,
         "ratio": ours_batch / floor_batch},
    ]  # fmt: skip


def bench_world(backend: LlamaCppBackend, beats: list[list[DecisionRequest]], mode: str) -> dict[str, Any]:
    """Each beat's 16 decisions through the service, all submitted at once; the floor of its tokens."""
    set_mode(backend, mode)
    n = len(beats[0])
    service = DecisionService(backend, max_batch=n, cache_size=0, max_queue=n + 1)
    rows = []
    for number, beat in enumerate(beats):
        stats0 = backend.stats()["prefix_cache"]
        start = time.perf_counter()
        tickets = [service.submit(r.profile, r.situation, seed=r.sampling.seed) for r in beat]
        results = [t.result() for t in tickets]
        seconds = time.perf_counter() - start
        stats1 = backend.stats()["prefix_cache"]
        looked = (stats1["hits"] + stats1["misses"]) - (stats0["hits"] + stats0["misses"])
        # a retried answer's counts add up its attempts; the floor decodes one attempt's worth per
        # decision (the mean), so retries make it cheaper, never ours: the ratio stays conservative,
        # and the sums cannot overflow a sequence's context
        floor_s = backend.decode_floor(
            [r.prompt_tokens // max(1, r.attempts) for r in results],
            [r.output_tokens // max(1, r.attempts) for r in results],
        )
        rows.append({
            "beat": number, "seconds": seconds, "decisions_per_s": n / seconds, "floor_s": floor_s,
            "x_floor": floor_s / seconds,
            "cache_hits": stats1["hits"] - stats0["hits"], "cache_lookups": looked,
            "reused_tokens": stats1["reused_tokens"] - stats0["reused_tokens"],
            "prompt_tokens": statistics.fmean(r.prompt_tokens for r in results),
            "output_tokens": statistics.fmean(r.output_tokens for r in results),
            "sources": {s: sum(r.source == s for r in results) for s in {r.source for r in results}},
        })  # fmt: skip
    service.close()
    warm = rows[1:] or rows
    warm_s = sum(r["seconds"] for r in warm)
    return {
        "mode": mode, "beats": rows,
        "warm_decisions_per_s": n * len(warm) / warm_s,
        "warm_x_floor": sum(r["floor_s"] for r in warm) / warm_s,
        "all_decisions_per_s": n * len(rows) / sum(r["seconds"] for r in rows),
    }  # fmt: skip


def bench_steering(
    backend: LlamaCppBackend, reqs: list[DecisionRequest], reps: int = 2
) -> list[dict[str, Any]]:
    """The same batch with steering on and off, alternated (``after`` decode path, cold cache each run)."""
    settings = {"on": (STEER_PENALTY, True), "off": (0.0, False)}
    runs: dict[str, list[tuple[float, int]]] = {k: [] for k in settings}
    for _ in range(reps):
        for label, (penalty, ban) in settings.items():
            backend.configure_steering(penalty=penalty, ban_name_echo=ban)
            set_mode(backend, "after")
            start = time.perf_counter()
            raws = backend.generate(reqs)
            runs[label].append((time.perf_counter() - start, sum(r.output_tokens for r in raws)))
    backend.configure_steering(penalty=STEER_PENALTY, ban_name_echo=True)
    rows: list[dict[str, Any]] = []
    for label, got in runs.items():
        seconds, tokens = sum(g[0] for g in got), sum(g[1] for g in got)
        rows.append({"steering": label, "seconds": seconds / reps, "output_tokens": tokens / reps,
                     "ms_per_output_token": 1000 * seconds / tokens})  # fmt: skip
    off = rows[1]["ms_per_output_token"]
    for row in rows:
        row["x_off_per_token"] = row["ms_per_output_token"] / off
    return rows


_SCHEDSTAT = Path("/proc/thread-self/schedstat")


def _thread_sched() -> tuple[int, int] | None:
    """This thread's CPU time and its time runnable but waiting for a core, in ns (Linux).

    The CPU time comes from the thread clock, exact when read; schedstat's own CPU figure only
    moves at scheduler events. Its wait is booked when the thread gets a core back, so a frame's
    preemption is counted by the frame's end.
    """
    try:
        _, waited, _ = _SCHEDSTAT.read_text().split()
        return time.thread_time_ns(), int(waited)
    except (OSError, ValueError):
        return None


def bench_frames(
    backend: LlamaCppBackend | WorkerBackend,
    cases: list[Case],
    characters: int = 50,
    seconds: float = 10.0,
    cache_size: int = 0,
) -> dict[str, Any]:
    """A 60 FPS loop: each frame submits for idle characters and polls; measures our blocking.

    With ``cache_size`` the decision cache is on: answered cases come back at once, so every
    character is resubmitted every frame (50 submits a frame), the heaviest load on ``submit``.
    Where Linux tells, the frame in which our code blocked longest is split into the game
    thread's CPU time, its wait for a core (the OS ran another thread) and the rest (waiting on
    the GIL or a lock).
    """
    service = DecisionService(backend, max_batch=16, max_queue=characters + 1, cache_size=cache_size)
    frame_budget = 1 / 60
    pending: dict[int, Any] = {}
    ours_ms, frames_ms = [], []
    worst: dict[str, float] = {}
    answered = 0
    end = time.perf_counter() + seconds
    i = 0
    refused = 0
    while time.perf_counter() < end:
        sched_start = _thread_sched()
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
        sched_end = _thread_sched()
        if sched_start and sched_end and ours * 1000 > worst.get("ms", -1.0):
            cpu_ms, core_ms = ((b - a) / 1e6 for a, b in zip(sched_start, sched_end, strict=True))
            worst = {"ms": ours * 1000, "cpu_ms": cpu_ms, "waiting_for_a_core_ms": core_ms,
                     "waiting_on_locks_ms": max(0.0, ours * 1000 - cpu_ms - core_ms)}  # fmt: skip
        ours_ms.append(ours * 1000)
        time.sleep(max(0.0, frame_budget - ours))  # the game "renders"
        frames_ms.append((time.perf_counter() - frame_start) * 1000)
        i += 1
    stats = service.stats()
    service.close()
    return {"frames": len(frames_ms), "frame_max_ms": max(frames_ms), "frame_p99_ms": percentile(frames_ms, 99),
            "ours_max_ms": max(ours_ms), "ours_p99_ms": percentile(ours_ms, 99), "ours_worst_frame": worst,
            "answered": answered,
            "model_answers_per_s": (stats.by_source.get("model", 0) + stats.by_source.get("retry", 0)) / seconds,
            "refused_queue_full": refused, "sources": stats.by_source}  # fmt: skip


def _split(worst: dict[str, float]) -> str:
    if not worst:
        return "-"
    return (
        f"{worst['cpu_ms']:.2f} / {worst['waiting_for_a_core_ms']:.2f} / {worst['waiting_on_locks_ms']:.2f}"
    )


def frame_rows(
    backend: LlamaCppBackend, model: str, cases: list[Case], seconds: float, threads: tuple[int, ...]
) -> list[dict[str, Any]]:
    """The frame loop in-thread (before and after) and with a worker process, per thread count."""
    rows = []
    default_threads = os.cpu_count() or 1
    for n in threads:
        for mode in ("before", "after"):
            if mode == "before" and n != default_threads:
                continue
            backend.set_threads(n)
            set_mode(backend, mode)
            rows.append(
                {
                    "decoder": "thread",
                    "mode": mode,
                    "threads": n,
                    **bench_frames(backend, cases, seconds=seconds),
                }
            )
    backend.set_threads(default_threads)
    for _ in range(2):  # the decision cache on: every character resubmitted each frame
        rows.append({"decoder": "thread", "mode": "after", "threads": default_threads, "cache": True,
                     **bench_frames(backend, cases, seconds=seconds, cache_size=1024)})  # fmt: skip
    for n in threads:
        worker = load_backend(model, isolation="process", n_threads=n)
        assert isinstance(worker, WorkerBackend)
        try:
            rows.append({"decoder": "process", "mode": "after", "threads": n,
                         **bench_frames(worker, cases, seconds=seconds)})  # fmt: skip
        finally:
            worker.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run every benchmark, before and after, and print the tables."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="default")
    parser.add_argument("--cases", type=Path, default=Path("finetune/data/public_cases.jsonl"))
    parser.add_argument("--skip-hf", action="store_true", help="skip the transformers comparison")
    parser.add_argument("--frame-seconds", type=float, default=10.0)
    parser.add_argument("--beats", type=int, default=4, help="world-pattern beats (the first is cold)")
    parser.add_argument("--quick", action="store_true", help="a tiny setting: checks that the code runs")
    args = parser.parse_args(argv)
    cases = load_cases(args.cases)
    n_through, levels, beats_n = 16, (1, 4, 8, 16), args.beats
    if args.quick:
        cases, n_through, levels, beats_n = cases[:3], 4, (1, 4), 2
        args.frame_seconds, args.skip_hf = min(args.frame_seconds, 2.0), True
    backend = load_backend(args.model)
    assert isinstance(backend, LlamaCppBackend), "benchmarks need a GGUF model"
    out: dict[str, Any] = {"model": backend.model_id, "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                           "cases": str(args.cases), "n_cases": len(cases), "modes": MODES}  # fmt: skip
    reqs = requests_for(cases, len(cases))

    singles = {mode: bench_single(backend, reqs, mode) for mode in MODES}
    repeat = {mode: bench_repeat(backend, cases, mode) for mode in MODES}
    out["single"] = {
        mode: {k: v for k, v in r.items() if not k.endswith("_lens")} for mode, r in singles.items()
    }
    out["repeat"] = repeat
    print(table("1. single decision (one at a time, a character's first)",
                ["mode", "p50 ms", "p95 ms", "prompt tok", "output tok", "tok/s"],
                [[m, r["p50_ms"], r["p95_ms"], r["prompt_tokens"], r["output_tokens"], r["tok_per_s"]]
                 for m, r in singles.items()]))  # fmt: skip
    print("\n" + table("1b. repeat decision for a cached character (same profile, new situation)",
                       ["mode", "p50 ms", "p95 ms", "prompt tokens reused"],
                       [[m, r["p50_ms"], r["p95_ms"], r["reused_prompt_tokens"]] for m, r in repeat.items()]))  # fmt: skip

    through = [bench_throughput(backend, cases, n_through, c, mode) for mode in MODES for c in levels]
    base = {r["mode"]: r["decisions_per_s"] for r in through if r["concurrency"] == 1}
    out["throughput"] = through
    print("\n" + table(f"2. throughput, {n_through} decisions through the service",
                       ["mode", "concurrent", "decisions/s", "tok/s", "x sequential", "x before", "sources"],
                       [[r["mode"], r["concurrency"], r["decisions_per_s"], r["tok_per_s"],
                         r["decisions_per_s"] / base[r["mode"]],
                         r["decisions_per_s"] / next(b["decisions_per_s"] for b in through
                                                     if b["mode"] == "before" and b["concurrency"] == r["concurrency"]),
                         r["sources"]] for r in through]))  # fmt: skip

    grammar = [bench_grammar(backend, cases, mode) for mode in MODES]
    out["grammar"] = grammar
    print("\n" + table("4. grammar overhead (single sequence, includes prompt)",
                       ["mode", "ms/tok grammar", "ms/tok free", "ratio"],
                       [[g["mode"], g["ms_per_token_grammar"], g["ms_per_token_free"], g["ratio"]] for g in grammar]))  # fmt: skip

    floor = [row for mode in MODES for row in bench_floor(backend, reqs, singles[mode], mode)]
    out["floor"] = floor
    print("\n" + table("5. decode floor (raw llama_decode of the same token counts, live ids kept consecutive)",
                       ["mode", "run", "ours s", "floor s", "ratio"],
                       [[r["mode"], r["run"], r["ours_s"], r["floor_s"], r["ratio"]] for r in floor]))  # fmt: skip

    beats = world_beats(beats_n)
    world = [bench_world(backend, beats, mode) for mode in MODES]
    out["world"] = world
    print("\n" + table(f"7. world pattern: {len(beats[0])} characters x {len(beats)} beats (beat 0 cold)",
                       ["mode", "beat", "s", "decisions/s", "floor s", "x floor", "cache hits", "reused tok",
                        "prompt tok", "output tok"],
                       [[w["mode"], r["beat"], r["seconds"], r["decisions_per_s"], r["floor_s"], r["x_floor"],
                         f"{r['cache_hits']}/{r['cache_lookups']}", r["reused_tokens"], r["prompt_tokens"],
                         r["output_tokens"]] for w in world for r in w["beats"]]))  # fmt: skip
    print(table("   warm beats", ["mode", "decisions/s", "x floor", "all beats decisions/s"],
                [[w["mode"], w["warm_decisions_per_s"], w["warm_x_floor"], w["all_decisions_per_s"]] for w in world]))  # fmt: skip
    steering = bench_steering(backend, requests_for(cases, n_through), reps=1 if args.quick else 2)
    out["steering"] = steering
    print("\n" + table(f"8. steering (engine.backends.steer), {n_through} decisions in one batch, on and off alternated",
                       ["steering", "s per batch", "output tok", "ms per output tok", "x off per token"],
                       [[r["steering"], r["seconds"], r["output_tokens"], r["ms_per_output_token"],
                         r["x_off_per_token"]] for r in steering]))  # fmt: skip
    out["decode_stats"] = backend.stats()

    frames = frame_rows(backend, args.model, cases, args.frame_seconds, threads=(os.cpu_count() or 1, 1))
    out["frames"] = frames
    print("\n" + table("6. 60 FPS loop, 50 characters (our code's blocking per frame)",
                       ["decoder", "mode", "threads", "frames", "frame max ms", "frame p99 ms", "ours max ms",
                        "ours p99 ms", "worst: CPU / core wait / lock wait ms", "model answers/s"],
                       [[f["decoder"], f["mode"] + (" + decision cache" if f.get("cache") else ""), f["threads"], f["frames"], f["frame_max_ms"], f["frame_p99_ms"],
                         f["ours_max_ms"], f["ours_p99_ms"], _split(f["ours_worst_frame"]), f["model_answers_per_s"]]
                        for f in frames]))  # fmt: skip

    # transformers runs last: torch's OpenMP threads keep spinning afterwards and slow llama.cpp
    if not args.skip_hf:
        from engine.backends.hf import TransformersBackend

        hf = TransformersBackend(backend.path.parent, gguf_file=backend.path.name, max_batch=1)
        hf_reqs = requests_for(cases, 4, max_new_tokens=200)
        start = time.perf_counter()
        hf_raws = hf.generate(hf_reqs)
        hf_s = time.perf_counter() - start
        hf_rate = len(hf_reqs) / hf_s
        best = {mode: max(r["decisions_per_s"] for r in through if r["mode"] == mode) for mode in MODES}
        out["transformers"] = {"decisions_per_s": hf_rate, "tok_per_s": sum(r.output_tokens for r in hf_raws) / hf_s,
                               **{f"ours_best_{m}": b for m, b in best.items()},
                               **{f"ratio_{m}": b / hf_rate for m, b in best.items()}}  # fmt: skip
        print("\n" + table("3. (run last: torch's threads keep spinning) transformers fp32 generate (same GGUF, dequantized), 4 decisions",
                           ["hf decisions/s", "hf tok/s", "ours best before", "ours best after", "ratio before", "ratio after"],
                           [[hf_rate, out["transformers"]["tok_per_s"], best["before"], best["after"],
                             best["before"] / hf_rate, best["after"] / hf_rate]]))  # fmt: skip

    backend.close()
    RESULTS.mkdir(exist_ok=True)
    name = args.model.replace("/", "_") + ("-quick" if args.quick else "")
    path = RESULTS / f"decisions-{name}.json"
    path.write_text(json.dumps(out, indent=2, default=str), "utf-8")
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
