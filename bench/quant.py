"""Quantization by measurement: speed and quality of each type, all made from one merged F16.

    python -m bench.quant [--model default] [--quants Q4_0,Q4_K_M,Q5_K_M,Q8_0] [--test-samples 60]
    python -m bench.quant --quick --model default     # tiny: two types, a few cases; checks the code runs

Builds the registered model's merged F16 GGUF once (base + adapter merged in float64 and converted,
as ``daydream models build`` does; needs the build extra) into the model cache, quantizes it to
each type with llama.cpp, then measures each type on the same inputs:
- speed: a character's first decision (p50), a repeat decision with its prompt cached (p50), and
  the world pattern's warm decisions/s with the ratio to its naive batched floor;
- quality through finetune.evaluate (the engine's real path, name-anchored grammar): validity,
  name and situation grounding, distinctness and invented names on the public cases and on the
  corpus test split.
The speed that decides is measured *interleaved* (``--rounds``): all types loaded at once, each
case decided by every type in turn (order reversed each round), then a batch of 16 by each, so a
noisy machine slows every type alike; ms per output token is the fair unit because types write
answers of different lengths. The per-type numbers above are sequential and only indicative.

Recommends the fastest type (interleaved ms per output token) that meets the release bars
(BARS: the default model's quality bars) on every set; a type replaces the registered one only
when it is at least SWITCH_GAIN faster. Also lists types outside TOLERANCE of the best type.
Writes bench/results/quant-<model>.json (quant-<model>-<type>+<type>... when --quants is not the
default four). Asserts nothing about time.

    python -m bench.quant --speed-only      # only the interleaved speed (minutes), no quality
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.decisions import bench_repeat, bench_single, bench_world, load_cases, requests_for, table
from bench.world import world_beats
from characters import Case, Motivation
from engine.backends.llamacpp import QUANT_CHOICES, LlamaCppBackend, quantize_gguf

RESULTS = Path(__file__).parent / "results"
DEFAULT_QUANTS = ("Q4_0", "Q4_K_M", "Q5_K_M", "Q8_0")
# quality metrics and how far below (or, for the "lower is better" ones, above) the best type a
# faster type may be and still be chosen
TOLERANCE = {
    "valid_first_try": 0.03,
    "name_grounding": 0.03,
    "situation_grounding": 0.05,
    "distinctness": 0.03,
    "invented_names": 0.03,
    "stock_rate": 0.03,
    "name_echo": 0.01,
}
LOWER_IS_BETTER = {"invented_names", "stock_rate", "name_echo"}
# the default model's release bars (README, "The default model"): a type that misses one on any set
# is not recommended, however fast
BARS = {
    "valid_first_try": (">=", 1.0),
    "situation_grounding": (">=", 0.75),
    "stock_rate": ("<=", 0.05),
    "name_echo": ("<=", 0.0),
    "invented_names": ("<=", 0.02),
    "duplicate_rate": ("<=", 0.0),
}
SWITCH_GAIN = 1.10  # a faster type replaces the registered one only when this much faster


def build_f16(model: str) -> Path:
    """The registered model's merged F16 GGUF, built once into the model cache."""
    from models.build import convert_to_gguf, locate_base, merge_adapter
    from models.registry import built_gguf_path, load_manifest, model_dir

    manifest = load_manifest(model)
    target = built_gguf_path(manifest).with_name(f"{model}-F16-{manifest.gguf.sha256[:8]}.gguf")
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    name = manifest.gguf.model_name or model
    with tempfile.TemporaryDirectory(prefix="daydream-f16-", dir=target.parent) as tmp:
        merge_adapter(str(locate_base(manifest)), model_dir(model) / "adapter", Path(tmp) / name)
        convert_to_gguf(Path(tmp) / name, Path(tmp) / "f16.gguf", name)
        (Path(tmp) / "f16.gguf").replace(target)
    return target


def variants(f16: Path, quants: list[str]) -> dict[str, Path]:
    """Each quant type of ``f16`` beside it (made once)."""
    out = {}
    for quant in quants:
        path = f16 if quant == "F16" else f16.with_name(f16.name.replace("-F16-", f"-{quant}-"))
        if not path.exists():
            quantize_gguf(f16, path, quant)
        out[quant] = path
    return out


def eval_sets(
    cases_path: Path, test_samples: int, case_samples: int
) -> dict[str, list[tuple[Case, Motivation | None]]]:
    """The public cases (each ``case_samples`` times) and the corpus test split with references."""
    from finetune.data.corpus import load_corpus
    from finetune.evaluate import load_eval_cases

    test = [
        (Case(id=ex.id, profile=ex.profile, situation=ex.situation), ex.motivation)
        for ex in load_corpus(split="test")[:test_samples]
    ]
    return {"public_cases": load_eval_cases(cases_path) * case_samples, "corpus_test": test}


def quality(
    backend: LlamaCppBackend, sets: dict[str, list[tuple[Case, Motivation | None]]]
) -> dict[str, Any]:
    """finetune.evaluate's metrics for one backend on each set."""
    from finetune.evaluate import Relevance, run_cases, score_results

    relevance = Relevance()
    return {name: score_results(run_cases(backend, cases), cases, relevance) for name, cases in sets.items()}


def bar_misses(quality_by_set: dict[str, dict[str, Any]]) -> list[str]:
    """The release bars a type misses, as 'set.metric value (bar)'."""
    misses = []
    for set_name, metrics in quality_by_set.items():
        for key, (op, bar) in BARS.items():
            value = metrics[key]
            if (value < bar) if op == ">=" else (value > bar):
                misses.append(f"{set_name}.{key} {value:.3f} (bar {op} {bar})")
    return misses


def tolerance_notes(rows: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """Per type, the metrics further than TOLERANCE from the best type's."""
    notes: dict[str, list[str]] = {}
    for quant, row in rows.items():
        worse = []
        for set_name, metrics in row["quality"].items():
            for key, tol in TOLERANCE.items():
                values = [r["quality"][set_name][key] for r in rows.values()]
                best = min(values) if key in LOWER_IS_BETTER else max(values)
                gap = metrics[key] - best if key in LOWER_IS_BETTER else best - metrics[key]
                if gap > tol:
                    worse.append(f"{set_name}.{key} {metrics[key]:.3f} vs best {best:.3f}")
        notes[quant] = worse
    return notes


def recommend(
    rows: dict[str, dict[str, Any]], speed: dict[str, dict[str, float]], current: str
) -> tuple[str, list[str]]:
    """The fastest type (interleaved ms per output token) meeting BARS; ``current`` unless beaten by
    SWITCH_GAIN. Returns the choice and the reasons, one line each."""
    notes, ok = [], []
    for quant, row in rows.items():
        misses = bar_misses(row["quality"])
        if misses:
            notes.append(f"{quant}: misses the release bars: " + "; ".join(misses))
        else:
            ok.append(quant)
    for quant, worse in tolerance_notes(rows).items():
        if worse:
            notes.append(f"{quant}: outside tolerance of the best type: " + "; ".join(worse))
    if not ok:
        notes.append(f"no type meets the release bars: keep {current}")
        return current, notes
    fastest = min(ok, key=lambda q: speed[q]["ms_per_output_token"])
    if current in ok and fastest != current:
        gain = speed[current]["ms_per_output_token"] / speed[fastest]["ms_per_output_token"]
        if gain < SWITCH_GAIN:
            notes.append(f"{fastest} is only {gain:.2f}x {current} per output token: keep {current}")
            return current, notes
    return fastest, notes


def interleaved_speed(paths: dict[str, Path], cases: list[Case], rounds: int) -> dict[str, dict[str, float]]:
    """Every type on the same decisions in turn: single decisions (ms per output token, p50 ms) and
    a batch of 16 (decisions/s), rounds alternating the order. The prompt cache is off."""
    from bench.decisions import set_mode
    from engine.stats import percentile

    backends = {q: LlamaCppBackend(path, model_id=q) for q, path in paths.items()}
    per_token: dict[str, list[float]] = {q: [] for q in paths}
    single: dict[str, list[float]] = {q: [] for q in paths}
    batch_rate: dict[str, list[float]] = {q: [] for q in paths}
    try:
        for backend in backends.values():
            set_mode(backend, "after")
            backend.configure_decode(prefix_cache_mb=0)
        for rnd in range(rounds):
            order = list(paths) if rnd % 2 == 0 else list(paths)[::-1]
            for req in requests_for(cases, len(cases), seed=rnd):
                for quant in order:
                    started = time.perf_counter()
                    raw = backends[quant].generate([req])[0]
                    took = time.perf_counter() - started
                    single[quant].append(took * 1000)
                    per_token[quant].append(took * 1000 / max(raw.output_tokens, 1))
            batch = requests_for(cases, 16, seed=100 + rnd)
            for quant in order:
                started = time.perf_counter()
                backends[quant].generate(batch)
                batch_rate[quant].append(len(batch) / (time.perf_counter() - started))
    finally:
        for backend in backends.values():
            backend.close()
    return {
        q: {
            "ms_per_output_token": percentile(per_token[q], 50),
            "single_p50_ms": percentile(single[q], 50),
            "batch16_decisions_per_s": sum(batch_rate[q]) / len(batch_rate[q]),
        }
        for q in paths
    }


def main(argv: list[str] | None = None) -> int:
    """Build the variants, measure each, print the table and the recommendation."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="default")
    parser.add_argument("--quants", default=",".join(DEFAULT_QUANTS))
    parser.add_argument("--cases", type=Path, default=Path("finetune/data/public_cases.jsonl"))
    parser.add_argument("--test-samples", type=int, default=60)
    parser.add_argument("--case-samples", type=int, default=3)
    parser.add_argument("--beats", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved speed rounds")
    parser.add_argument("--speed-only", action="store_true", help="only the interleaved speed")
    parser.add_argument("--quick", action="store_true", help="a tiny setting: checks the code runs")
    args = parser.parse_args(argv)
    quants = [q.strip() for q in args.quants.split(",") if q.strip()]
    unknown = [q for q in quants if q not in QUANT_CHOICES]
    if unknown:
        parser.error(f"unknown quant types {unknown}; choose from {', '.join(QUANT_CHOICES)}")
    cases = load_cases(args.cases)
    if args.quick:
        quants, cases = quants[:2], cases[:3]
        args.test_samples, args.case_samples, args.beats, args.rounds = 3, 1, 2, 1
    from models.registry import load_manifest

    current = load_manifest(args.model).gguf.quant
    f16 = build_f16(args.model)
    paths = variants(f16, quants)
    machine = f"{platform.machine()}, {os.cpu_count()} cores"
    speed = interleaved_speed(paths, cases, args.rounds)
    print(table(f"interleaved speed of {args.model} ({machine}, {args.rounds} rounds, prompt cache off)",
                ["quant", "MB", "ms / output token", "x " + current, "single p50 ms", "batch of 16, dec/s"],
                [[q, round(paths[q].stat().st_size / 2**20, 1), v["ms_per_output_token"],
                  v["ms_per_output_token"] / speed[current]["ms_per_output_token"] if current in speed else "",
                  v["single_p50_ms"], v["batch16_decisions_per_s"]] for q, v in speed.items()]))  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    suffix = "-quick" if args.quick else ""
    if tuple(quants) != DEFAULT_QUANTS:  # another choice of types does not overwrite the full table
        suffix += "-" + "+".join(quants)
    if args.speed_only:
        path = RESULTS / f"quant-{args.model}-speed{suffix}.json"
        path.write_text(json.dumps({"model": args.model, "machine": machine, "rounds": args.rounds,
                                    "speed": speed}, indent=2), "utf-8")  # fmt: skip
        print(f"wrote {path}")
        return 0
    sets = eval_sets(args.cases, args.test_samples, args.case_samples)
    if args.quick:
        sets = {name: cases_[:3] for name, cases_ in sets.items()}
    beats = world_beats(args.beats)
    rows: dict[str, dict[str, Any]] = {}
    for quant, path in paths.items():
        started = time.perf_counter()
        backend = LlamaCppBackend(path, model_id=f"{args.model}-{quant}")
        try:
            single = bench_single(backend, requests_for(cases, len(cases)), "after")
            repeat = bench_repeat(backend, cases, "after")
            world = bench_world(backend, beats, "after")
            backend.configure_decode(prefix_cache_mb=256)
            rows[quant] = {
                "file_mb": round(path.stat().st_size / 2**20, 1),
                "speed": {
                    "single_p50_ms": single["p50_ms"],
                    "repeat_p50_ms": repeat["p50_ms"],
                    "world_warm_decisions_per_s": world["warm_decisions_per_s"],
                    "world_warm_x_floor": world["warm_x_floor"],
                    **{f"interleaved_{k}": v for k, v in speed[quant].items()},
                },
                "quality": quality(backend, sets),
            }
        finally:
            backend.close()
        print(f"{quant}: measured in {time.perf_counter() - started:.0f} s", flush=True)

    metrics = ["json_valid", "valid_first_try", "name_grounding", "situation_grounding", "distinctness",
               "invented_names", "stock_rate", "name_echo"]  # fmt: skip
    headers = ["quant", "MB", "single p50 ms", "repeat p50 ms", "world dec/s", "x floor"]
    headers += [f"{s}.{m}" for s in sets for m in metrics]
    print(table(f"quantization of {args.model} ({machine}; speed here measured one type after another)", headers,
                [[q, r["file_mb"], r["speed"]["single_p50_ms"], r["speed"]["repeat_p50_ms"],
                  r["speed"]["world_warm_decisions_per_s"], r["speed"]["world_warm_x_floor"],
                  *[r["quality"][s][m] for s in sets for m in metrics]] for q, r in rows.items()]))  # fmt: skip
    choice, notes = recommend(rows, speed, current)
    for note in notes:
        print(note)
    print(f"recommended: {choice} (registered: {current}; the fastest per output token, interleaved, "
          f"that meets the release bars {BARS}, by at least {SWITCH_GAIN}x)")  # fmt: skip
    path = RESULTS / f"quant-{args.model}{suffix}.json"
    out = {"model": args.model, "machine": machine, "f16": str(f16), "rows": rows, "recommended": choice,
           "registered": current, "notes": notes, "bars": BARS, "tolerance": TOLERANCE,
           "sets": {s: len(c) for s, c in sets.items()}}  # fmt: skip
    path.write_text(json.dumps(out, indent=2), "utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
