"""A pygame village at 60 FPS whose people ask the in-process DecisionService what to do next.

    python examples/pygame/game.py                          # a window; rules backend, instant answers
    python examples/pygame/game.py --model default          # the fine-tuned model (decisions take seconds)
    SDL_VIDEODRIVER=dummy python examples/pygame/game.py --seconds 5 --report frames.json   # headless

The loop never waits on a decision: it submits with a deadline, draws, and polls once per frame.
``--report`` writes frame times (p50/p99/max), how long our submit() and poll() calls blocked the
frame, and where the decisions came from.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pygame

from characters import CharacterProfile, Situation, load_cast
from engine import DecisionService, Ticket
from engine.stats import percentile

WIDTH, HEIGHT, FPS = 960, 600, 60
PLACES = {
    "the bakery": (140, 140),
    "the square": (480, 300),
    "the well": (820, 120),
    "the chapel": (160, 480),
    "the docks": (800, 500),
}


@dataclass(eq=False)
class Person:
    """One villager: where they are, where they go, what they last decided."""

    profile: CharacterProfile
    x: float
    y: float
    target: tuple[float, float]
    colour: tuple[int, int, int]
    thought: str = "..."
    source: str = ""
    ticket: Ticket | None = None
    next_decision_s: float = 0.0
    decisions: int = field(default=0)


def build_situation(person: Person, place: str, clock_s: float) -> Situation:
    """What the game knows about this moment, as the engine reads it."""
    hour = 6 + int(clock_s // 10) % 16
    return Situation(
        context=f"{hour:02d}:00 at {place}. The market is busy and a storm is coming in from the sea.",
        location=place,
        time=f"{hour:02d}:00",
    )


def nearest_place(x: float, y: float) -> str:
    """The place closest to a point."""
    return min(PLACES, key=lambda p: math.dist((x, y), PLACES[p]))


def choose_target(thought: str, rng: random.Random) -> tuple[float, float]:
    """Walk to a place the purpose mentions, else anywhere: the game's own mapping of words to moves."""
    for place, where in PLACES.items():
        if place.split()[-1] in thought.lower():
            return where
    return rng.choice(list(PLACES.values()))


def run(
    model: str, seconds: float | None, report: Path | None, n_people: int, seed: int, deadline_s: float
) -> dict[str, object]:
    """The game loop; returns the frame report."""
    rng = random.Random(seed)
    pygame.init()
    screen = pygame.display.set_mode((WIDTH, HEIGHT))
    pygame.display.set_caption(f"Daydream village ({model})")
    font = pygame.font.Font(None, 20)
    clock = pygame.time.Clock()
    cast = load_cast("town").characters[:n_people]
    people = [
        Person(
            profile=p,
            x=rng.uniform(80, WIDTH - 80),
            y=rng.uniform(80, HEIGHT - 80),
            target=rng.choice(list(PLACES.values())),
            colour=(rng.randint(80, 255), rng.randint(80, 255), rng.randint(80, 255)),
            next_decision_s=rng.uniform(0.0, 1.0),
        )
        for p in cast
    ]
    frame_ms: list[float] = []
    blocked_ms: list[float] = []  # time our submit() + poll() calls took inside one frame
    submitted = answered = 0
    started = last = time.perf_counter()
    with DecisionService(model=model, max_batch=16, default_deadline_s=deadline_s) as service:
        started = last = time.perf_counter()  # after the model has loaded
        running = True
        while running:
            for event in pygame.event.get():
                if event.type == pygame.QUIT or (
                    event.type == pygame.KEYDOWN and event.key == pygame.K_ESCAPE
                ):
                    running = False
            now = time.perf_counter() - started
            engine_start = time.perf_counter()
            for person in people:
                if person.ticket is None and now >= person.next_decision_s:
                    place = nearest_place(person.x, person.y)
                    person.ticket = service.submit(
                        person.profile, build_situation(person, place, now), seed=rng.randrange(1 << 30)
                    )
                    person.thought = "thinking..."
                    submitted += 1
            for ticket in service.poll():
                person = next(p for p in people if p.ticket is ticket)
                person.ticket = None
                person.next_decision_s = now + rng.uniform(2.0, 5.0)
                if ticket.cancelled():
                    continue
                result = ticket.result()
                person.thought, person.source = result.motivation.purpose_a, result.source
                person.target = choose_target(person.thought, rng)
                person.decisions += 1
                answered += 1
            blocked_ms.append((time.perf_counter() - engine_start) * 1000.0)

            screen.fill((28, 32, 40))
            for place, (px, py) in PLACES.items():
                pygame.draw.circle(screen, (60, 70, 90), (px, py), 36)
                screen.blit(font.render(place, True, (180, 190, 210)), (px - 36, py + 40))
            for person in people:
                dx, dy = person.target[0] - person.x, person.target[1] - person.y
                dist = math.hypot(dx, dy)
                if dist > 1:
                    person.x += dx / dist * min(dist, 1.5)
                    person.y += dy / dist * min(dist, 1.5)
                pygame.draw.circle(screen, person.colour, (int(person.x), int(person.y)), 9)
                label = f"{person.profile.name}: {person.thought[:70]}"
                screen.blit(font.render(label, True, person.colour), (int(person.x) + 12, int(person.y) - 8))
            pygame.display.flip()
            clock.tick(FPS)
            tick = time.perf_counter()
            frame_ms.append((tick - last) * 1000.0)
            last = tick
            if seconds is not None and tick - started >= seconds:
                running = False
        elapsed = time.perf_counter() - started
        stats = service.stats()
        in_flight = sum(1 for p in people if p.ticket is not None)
    pygame.quit()
    frames = frame_ms[1:]  # the first frame includes window and font setup
    result: dict[str, object] = {
        "model": model,
        "seconds": round(elapsed, 2),
        "frames": len(frame_ms),
        "fps": round(len(frame_ms) / elapsed, 1),
        "frame_ms_p50": round(percentile(frames, 50), 2),
        "frame_ms_p99": round(percentile(frames, 99), 2),
        "frame_ms_max": round(max(frames, default=0.0), 2),
        "engine_blocked_ms_p99": round(percentile(blocked_ms, 99), 3),
        "engine_blocked_ms_max": round(max(blocked_ms, default=0.0), 3),
        "submitted": submitted,
        "answered": answered,
        "in_flight_at_exit": in_flight,
        "by_source": stats.by_source,
        "decision_p50_ms": round(stats.p50_latency_ms, 1),
    }
    if report is not None:
        report.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run the game."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", default="rules", help="rules, default, a GGUF path ... (as DecisionService)"
    )
    parser.add_argument("--seconds", type=float, default=None, help="quit after this many seconds")
    parser.add_argument("--report", type=Path, default=None, help="write the frame report (JSON) here")
    parser.add_argument("--people", type=int, default=8, help="villagers (from the town cast)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--deadline-s", type=float, default=20.0, help="past it a villager gets the flagged rules fallback"
    )
    args = parser.parse_args(argv)
    if args.seconds is not None:
        os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    summary = run(args.model, args.seconds, args.report, args.people, args.seed, args.deadline_s)
    print(json.dumps(summary), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
