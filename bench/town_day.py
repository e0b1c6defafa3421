"""One simulated day of a 16-character town on a real model, driven like a game drives it.

    python -m bench.town_day [--model default] [--speed 6] [--hours 24] [--deadline 30|none]
                             [--residents 16|9]
                             [--mode before|after] [--isolation thread|process]
                             [--follow-through on|off] [--reflex on|off] [--batching continuous|whole] [--max-batch 8]

The town world's 9 residents plus the 7 in bench/town_newcomers.yaml live one day. The loop runs
at a fixed speed (sim-minutes per real second) on an absolute schedule, the way a game's update
loop does, and never waits for the model: a character whose decision has not landed keeps
"thinking" while the world moves on. Prints a table and writes bench/results/town-day-<model>.json.

Measured: real time, decisions and decisions per second, the share answered by the model,
the cache and the rules fallback, decision latency, how long characters spent thinking (waiting
with nothing to do) and deciding (a decision pending, whether or not they act on a leftover
purpose meanwhile: follow-through, engine/sim/simulation.py), how long they acted on a reflex
(the rules' first reaction while a first or post-event decision is made), how often
the loop itself overran its tick (the world waiting on inference: target never), and the
longest tick.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import yaml

from bench.decisions import MODES, table
from characters import Cast, CharacterProfile
from engine.models import load_backend
from engine.service import DecisionService
from engine.sim.agent import Agent
from engine.sim.simulation import Simulation
from engine.sim.world import ResidentSpec, WorldSpec, load_world

RESULTS = Path(__file__).parent / "results"
NEWCOMERS = Path(__file__).parent / "town_newcomers.yaml"


def build_town16() -> tuple[WorldSpec, Cast]:
    """The town world with the seven newcomers moved in (16 residents)."""
    spec, cast = load_world("town")
    extra = yaml.safe_load(NEWCOMERS.read_text("utf-8"))
    residents = dict(spec.residents)
    residents.update({name: ResidentSpec.model_validate(r) for name, r in extra["residents"].items()})
    spec = WorldSpec.model_validate({**spec.model_dump(), "residents": residents})
    people = [*cast.characters, *(CharacterProfile.model_validate(c) for c in extra["characters"])]
    return spec, Cast(name=cast.name, setting=cast.setting, characters=people)


def _on_reflex(agent: Agent) -> bool:
    """Acting on the rules' first reaction while a decision is made."""
    return agent.status == "acting" and agent.action is not None and agent.action.reflex


def run_day(
    model: str,
    *,
    speed: float,
    hours: float,
    deadline_s: float | None,
    seed: int,
    mode: str = "after",
    isolation: str = "thread",
    follow_through: bool = True,
    continuous: bool = True,
    max_batch: int = 8,
    residents: int = 16,
    reflex: bool = True,
) -> dict[str, Any]:
    """Run the day in real time; returns the measurements.

    ``mode``: the decode path before or after the prompt cache, jump-forward and compaction;
    ``isolation``: decode in this process or in a worker process; ``follow_through``: characters
    take up a leftover purpose of their last decision while the next one is made; ``continuous``:
    tickets join the decode between steps (else whole batches); ``max_batch``: how many decode
    together; ``reflex``: with follow-through, act on the rules' reading of the moment while a first
    decision (or one after an interrupting event) is made; ``residents``: 16 (the town and its
    newcomers) or 9 (the town as the demo opens it).
    ``deadline_s`` None: no deadline, every decision waits for the model.
    """
    spec, cast = build_town16() if residents == 16 else load_world("town")
    backend = load_backend(model, isolation=isolation, **MODES[mode])
    service = DecisionService(backend, max_batch=max_batch, continuous=continuous)
    sim = Simulation(spec, cast, service, seed=seed, deadline_s=deadline_s, follow_through=follow_through,
                     reflex=reflex and follow_through)  # fmt: skip
    tick_s = sim.tick_minutes / speed
    total_ticks = int(hours * 60 / sim.tick_minutes)
    step_ms: list[float] = []
    overruns = 0
    thinking_minutes = 0
    deciding_minutes = 0
    reflex_minutes = 0
    settled_ticks = settled_thinking = 0  # after every character's first decision landed
    unmapped: list[str] = []
    sim.bus.subscribe(lambda e: unmapped.append(e.text) if e.kind == "unmapped" else None)
    with service:
        started = time.perf_counter()
        for tick in range(total_ticks):
            begin = time.perf_counter()
            sim.step(sim.tick_minutes)
            step_ms.append((time.perf_counter() - begin) * 1000.0)
            thinking_now = sim.tick_minutes * sum(a.status == "thinking" for a in sim.agents.values())
            thinking_minutes += thinking_now
            deciding_minutes += sim.tick_minutes * len(sim.pending)
            reflex_minutes += sim.tick_minutes * sum(map(_on_reflex, sim.agents.values()))
            if settled_ticks or all(a.decisions for a in sim.agents.values()):
                settled_ticks += 1
                settled_thinking += thinking_now
            slack = started + (tick + 1) * tick_s - time.perf_counter()
            if slack < 0:
                overruns += 1  # the world fell behind its own schedule this tick
            else:
                time.sleep(slack)
        elapsed = time.perf_counter() - started
        stats = service.stats()
    decode_stats = backend.stats() if hasattr(backend, "stats") else {}
    backend.close()
    agent_minutes = len(sim.agents) * total_ticks * sim.tick_minutes
    decided = sum(stats.by_source.values())
    return {
        "mode": mode,
        "isolation": isolation,
        "follow_through": follow_through,
        "reflex": sim.reflex,
        "batching": "continuous" if continuous else "whole",
        "max_batch": max_batch,
        "characters": len(sim.agents),
        "deadline_s": deadline_s,
        "sim_hours": hours,
        "speed_sim_min_per_s": speed,
        "real_s": round(elapsed, 1),
        "decisions": sim.counters["decisions"],
        "decisions_per_s": round(sim.counters["decisions"] / elapsed, 3),
        "by_source": dict(stats.by_source),
        "model_share": round(
            (stats.by_source.get("model", 0) + stats.by_source.get("retry", 0)) / max(decided, 1), 3
        ),
        "fallback_share": round(stats.by_source.get("fallback", 0) / max(decided, 1), 3),
        "fallback_reasons": dict(stats.fallback_reasons),
        "retries": stats.retries,
        "p50_latency_ms": round(stats.p50_latency_ms),
        "p95_latency_ms": round(stats.p95_latency_ms),
        "mean_batch": round(stats.mean_batch_size, 2),
        "thinking_share": round(thinking_minutes / agent_minutes, 3),
        "deciding_share": round(deciding_minutes / agent_minutes, 3),
        "reflex_share": round(reflex_minutes / agent_minutes, 3),
        "first_decisions_at_sim_minute": (total_ticks - settled_ticks) * sim.tick_minutes,
        "thinking_share_after_first_decisions": round(
            settled_thinking / max(1, len(sim.agents) * settled_ticks * sim.tick_minutes), 3
        ),
        "follow_through_actions": sim.counters["follow_through"],
        "reflex_actions": sim.counters["reflex"],
        "cut_short": sim.counters["cut_short"],
        "ticks": total_ticks,
        "loop_overruns": overruns,
        "world_waits": sim.counters["waits"],
        "step_ms_max": round(max(step_ms), 2),
        "step_ms_p99": round(sorted(step_ms)[int(0.99 * (len(step_ms) - 1))], 2),
        "unmapped": sim.counters["unmapped"],
        "unmapped_purposes": unmapped[:40],
        "interactions": sim.counters["interactions"],
        "prompt_cache": decode_stats.get("prefix_cache", {}),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="default")
    parser.add_argument("--speed", type=float, default=6.0, help="sim-minutes per real second")
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument(
        "--deadline",
        type=lambda v: None if v == "none" else float(v),
        default=30.0,
        help="seconds before a decision falls back to rules ('none': no deadline)",
    )
    parser.add_argument(
        "--residents",
        type=int,
        choices=(9, 16),
        default=16,
        help="16: with the newcomers; 9: the demo's town",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mode", choices=tuple(MODES), default="after")
    parser.add_argument("--isolation", choices=("thread", "process"), default="thread")
    parser.add_argument(
        "--follow-through",
        choices=("on", "off"),
        default="on",
        help="act on a leftover purpose of the last decision while the next one is made",
    )
    parser.add_argument(
        "--reflex",
        choices=("on", "off"),
        default="on",
        help="with follow-through: act on the rules' reading while a first (or post-event) decision is made",
    )
    parser.add_argument("--batching", choices=("continuous", "whole"), default="continuous")
    parser.add_argument("--max-batch", type=int, default=8, help="how many decisions decode together")
    args = parser.parse_args(argv)
    result = run_day(
        args.model,
        speed=args.speed,
        hours=args.hours,
        deadline_s=args.deadline,
        seed=args.seed,
        mode=args.mode,
        isolation=args.isolation,
        follow_through=args.follow_through == "on",
        continuous=args.batching == "continuous",
        max_batch=args.max_batch,
        residents=args.residents,
        reflex=args.reflex == "on",
    )
    result["model"] = args.model
    result["machine"] = f"{platform.machine()}, {os.cpu_count()} cores"
    rows = [[k, v] for k, v in result.items() if k not in ("model", "machine", "unmapped_purposes")]
    print(
        table(
            f"{args.residents}-character town, {args.hours:g} h on {args.model} ({result['machine']})",
            ["measure", "value"],
            rows,
        )
    )
    RESULTS.mkdir(exist_ok=True)
    suffix = "" if (args.mode, args.isolation) == ("after", "thread") else f"-{args.mode}-{args.isolation}"
    suffix += "" if args.follow_through == "on" else "-no-follow-through"
    suffix += "" if args.reflex == "on" or args.follow_through == "off" else "-no-reflex"
    suffix += "" if args.batching == "continuous" else "-whole-batches"
    suffix += "" if args.max_batch == 8 else f"-batch{args.max_batch}"
    suffix += "" if args.residents == 16 else f"-{args.residents}-residents"
    suffix += "" if args.deadline == 30.0 else f"-deadline-{args.deadline}"
    path = RESULTS / f"town-day-{args.model.replace('/', '_')}{suffix}.json"
    path.write_text(json.dumps(result, indent=2), "utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
