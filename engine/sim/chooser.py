"""Choosers: pick one of the three purposes. Seeded; favours a > b > c, bent by needs and personality."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Protocol

from engine.sim.agent import Agent
from engine.sim.mapper import MappedAction
from engine.sim.world import WorldSpec

BASE_WEIGHTS = (0.6, 0.28, 0.12)
_NEED_OF_KIND = {"eat": "hunger", "rest": "energy", "social": "social", "help": "social",
                 "leisure": "fun", "work": "money"}  # fmt: skip


class Chooser(Protocol):
    """Picks the index (0, 1, 2) of the purpose to act on."""

    def choose(self, agent: Agent, options: Sequence[MappedAction], rng: random.Random) -> int:
        """Choose one option."""
        ...


class WeightedChooser:
    """a > b > c by default; an option that meets a pressing need or suits the personality gains."""

    def __init__(self, world: WorldSpec, base: Sequence[float] = BASE_WEIGHTS) -> None:
        self.world = world
        self.base = tuple(base)

    def weights(self, agent: Agent, options: Sequence[MappedAction]) -> list[float]:
        """The unnormalized weight of each option."""
        pressing = agent.pressing()
        mbti = agent.profile.mbti or ""
        out = []
        for base, option in zip(self.base, options, strict=False):
            weight = base
            kind = self.world.action(option.action).kind
            need = _NEED_OF_KIND.get(kind)
            if need and need in pressing:
                weight *= 2.5 if need == pressing[0] else 1.6
                if agent.needs[need] < 12:  # desperate: almost anything else can wait
                    weight *= 3.0
            if kind in ("social", "help") and mbti.startswith("E"):
                weight *= 1.3
            if kind in ("leisure", "rest") and mbti.startswith("I"):
                weight *= 1.2
            if kind == "work" and "J" in mbti[3:]:
                weight *= 1.2
            if option.unmapped:
                weight *= 0.5
            out.append(weight)
        return out

    def choose(self, agent: Agent, options: Sequence[MappedAction], rng: random.Random) -> int:
        """Draw an option by weight with the simulation's seeded rng."""
        weights = self.weights(agent, options)
        return rng.choices(range(len(weights)), weights=weights)[0]
