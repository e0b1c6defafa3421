"""Decisions next to a busy neighbour: fixed llama.cpp threads against the thread governor.

    python -m bench.threads [--model default] [--rounds 2] [--batch 4] [--neighbours 0,1]

A game is never idle: its loop keeps a core busy. Here a neighbour is a process spinning on one
core. Each row decodes the same ``--batch`` decisions (one batch, the same seeds) on one backend,
with llama.cpp's thread count fixed at the cores or set by the governor
(``engine.backends.thread_governor``), alternated within each round so that both see the same
machine. Prints a table and writes bench/results/threads-<model>.json. Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.decisions import load_cases, requests_for, table
from engine.atomic import write_text_atomic
from engine.backends.llamacpp import LlamaCppBackend
from engine.models import load_backend

RESULTS = Path(__file__).parent / "results"
_SPIN = "import time\nwhile True:\n    time.perf_counter()\n"


def _decide(backend: LlamaCppBackend, requests: list[Any], adaptive: bool) -> dict[str, Any]:
    backend.configure_decode(adaptive_threads=adaptive)
    start = time.perf_counter()
    raws = backend.generate(requests)
    seconds = time.perf_counter() - start
    tokens = sum(raw.output_tokens for raw in raws)
    threads = backend.stats()["threads"]
    return {"seconds": seconds, "tok_per_s": tokens / seconds, "threads_after": threads["now"],
            "others_cores": threads["others_cores"], "errors": sum(raw.error is not None for raw in raws)}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    """Run the rows and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--cases", type=Path, default=Path("finetune/data/public_cases.jsonl"))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--neighbours", default="0,1", help="spinning processes per row group")
    args = parser.parse_args(argv)

    backend = load_backend(args.model)
    assert isinstance(backend, LlamaCppBackend)
    cases = load_cases(args.cases)
    requests = requests_for(cases, args.batch, seed=40)
    backend.generate(requests[:1])  # first-use costs out of the rows
    rows: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for _ in range(args.rounds):
        for neighbours in (int(n) for n in args.neighbours.split(",")):
            spinners = [subprocess.Popen([sys.executable, "-c", _SPIN]) for _ in range(neighbours)]
            try:
                time.sleep(1.5)  # a governor measure (1 s) sees the neighbour before the first row
                for mode in ("fixed", "governor"):
                    rows.setdefault((neighbours, mode), []).append(
                        _decide(backend, requests, mode == "governor")
                    )
            finally:
                for spinner in spinners:
                    spinner.kill()
                    spinner.wait()
    backend.configure_decode(adaptive_threads=True)
    out_rows = []
    for (neighbours, mode), runs in rows.items():
        fixed = rows[(neighbours, "fixed")]
        out_rows.append({
            "neighbours": neighbours, "mode": mode,
            "tok_per_s": [round(r["tok_per_s"], 1) for r in runs],
            "ratio_to_fixed": [round(r["tok_per_s"] / f["tok_per_s"], 2) for r, f in zip(runs, fixed, strict=True)],
            "seconds_median": statistics.median(r["seconds"] for r in runs),
            "threads_after": [r["threads_after"] for r in runs],
            # the governor's measure of the machine's other work (a fixed row takes none)
            "others_cores": [r["others_cores"] for r in runs] if mode == "governor" else [],
            "errors": sum(r["errors"] for r in runs),
        })  # fmt: skip
    print(table(
        f"Decisions next to spinning processes ({args.batch} in one batch, {args.rounds} rounds, "
        f"{os.cpu_count()} cores)",
        ["neighbours", "threads", "tok/s per round", "x fixed", "s (median)", "threads after", "others (cores)"],
        [[r["neighbours"], r["mode"], " / ".join(map(str, r["tok_per_s"])), " / ".join(map(str, r["ratio_to_fixed"])),
          r["seconds_median"], " / ".join(map(str, r["threads_after"])), " / ".join(map(str, r["others_cores"])) or "-"]
         for r in out_rows],
    ))  # fmt: skip
    path = RESULTS / f"threads-{args.model}.json"
    result = {"model": args.model, "batch": args.batch, "rounds": args.rounds, "cpu_count": os.cpu_count(),
              "machine": platform.platform(), "rows": out_rows}  # fmt: skip
    write_text_atomic(path, json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {path}")
    backend.close()


if __name__ == "__main__":
    main()
