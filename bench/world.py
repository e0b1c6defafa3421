"""The world pattern: the same 16 characters asked again and again, a new situation each beat.

Requests come from the 16-character town (bench/town_day.py) run with the rules backend in
lockstep: each beat holds every character's next decision request as the game would send it,
profile (whose background gains "Lately:" memories as the day goes on) and situation (time,
place, who is near, needs, memories). Recording them once keeps every configuration of a
benchmark on the same inputs.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from characters import CharacterProfile, Situation
from engine.request import DecisionRequest, Sampling
from engine.service import DecisionService
from engine.sim.simulation import Simulation
from engine.ticket import Ticket


class _Recorder:
    """A rules DecisionService that remembers what each character asked, in order."""

    def __init__(self) -> None:
        self.service = DecisionService("rules")
        self.asked: dict[str, list[tuple[CharacterProfile, Situation]]] = defaultdict(list)

    def submit(self, profile: CharacterProfile, situation: Situation, **options: Any) -> Ticket:
        self.asked[profile.name].append((profile, situation))
        return self.service.submit(profile, situation, **options)


def world_beats(
    beats: int, *, seed: int = 0, max_ticks: int = 2000, **sampling: Any
) -> list[list[DecisionRequest]]:
    """``beats`` lists of 16 requests, one per character, each beat a new situation for everyone."""
    from bench.town_day import build_town16

    spec, cast = build_town16()
    recorder = _Recorder()
    sim = Simulation(spec, cast, recorder, seed=seed, lockstep=True)  # type: ignore[arg-type]
    names = [c.name for c in cast.characters]
    for _ in range(max_ticks):
        if all(len(recorder.asked[n]) >= beats for n in names):
            break
        sim.step(sim.tick_minutes)
    recorder.service.close()
    if not all(len(recorder.asked[n]) >= beats for n in names):
        raise RuntimeError(f"the town did not ask every character {beats} times in {max_ticks} ticks")
    return [
        [
            DecisionRequest(*recorder.asked[n][beat], Sampling(seed=1000 * beat + i, **sampling))
            for i, n in enumerate(names)
        ]
        for beat in range(beats)
    ]
