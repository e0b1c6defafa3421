"""``daydream simulate``: run a world for some hours and print what happened."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from tqdm import tqdm

from engine.atomic import write_text_atomic
from engine.models import ModelSpecError
from engine.service import DecisionService
from engine.sim.simulation import Simulation
from engine.sim.world import WorldError, load_world


def run_simulate(
    world: str,
    *,
    hours: float,
    speed: str,
    model: str,
    seed: int,
    log: str | None,
    save: str | None,
    quiet: bool,
    deadline_s: float | None,
) -> int:
    """Run the world; print the event log and a summary. Returns the exit status."""
    try:
        spec, cast = load_world(world)
    except WorldError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        service = DecisionService(model=model)
    except (ModelSpecError, FileNotFoundError, RuntimeError) as err:
        print(f"error: cannot load model {model!r}: {err}", file=sys.stderr)
        return 2
    per_second = None if speed == "max" else float(speed)
    lockstep = model == "rules" and per_second is None
    sim = Simulation(spec, cast, service, seed=seed, lockstep=lockstep, deadline_s=deadline_s)
    lines: list[str] = []
    sim.bus.subscribe(lambda e: lines.append(e.to_json()))
    if not quiet:
        sim.bus.subscribe(lambda e: tqdm.write(e.readable(), file=sys.stdout))
    total = int(hours * 60)
    started = time.perf_counter()
    with service, tqdm(total=total, desc=spec.name, unit="sim-min", file=sys.stderr, leave=False) as bar:
        done = 0
        while done < total:
            tick = min(sim.tick_minutes, total - done)
            sim.step(tick)
            done += tick
            bar.update(tick)
            if per_second:
                time.sleep(tick / per_second)
        # let decisions still in flight land, so the summary counts them
        deadline = time.monotonic() + 30
        while sim.pending and time.monotonic() < deadline and not lockstep:
            time.sleep(0.05)
            sim.collect_decisions()
        stats = service.stats()
    elapsed = time.perf_counter() - started
    if log:
        write_text_atomic(Path(log), "".join(line + "\n" for line in lines))
    if save:
        sim.save(save)
    print(f"\n{spec.name}: {hours:g} simulated hours in {elapsed:.1f} s real time ({sim.describe_clock()})")
    print(f"decisions {sim.counters['decisions']} ({sim.counters['decisions'] / max(elapsed, 1e-9):.1f}/s), "
          f"sources {stats.by_source}, p50 latency {stats.p50_latency_ms:.0f} ms, p95 {stats.p95_latency_ms:.0f} ms")  # fmt: skip
    print(f"interactions {sim.counters['interactions']}, unmapped purposes {sim.counters['unmapped']}, "
          f"world waited on inference {sim.counters['waits']} times, decisions late {sim.counters['ran_ahead']} ticks")  # fmt: skip
    changes = sim.relationship_changes()
    if changes:
        print("biggest relationship changes:")
        for who, other, delta in changes:
            print(f"  {who} -> {other}: {delta:+.1f}")
    return 0
