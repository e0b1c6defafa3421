"""The simulation loop: a world whose characters decide through the DecisionService.

    sim = Simulation.from_world("town", DecisionService("rules"), seed=7)
    sim.step(60)             # one simulated hour; never blocks on inference unless lockstep=True

When a character's action ends (or an important event interrupts it), a decision request goes to
the service with a priority and a deadline. The world keeps ticking while the model thinks. When the
Motivation arrives, a chooser picks one purpose, a mapper turns it into a catalog action with a
target, and the action starts. ``lockstep=True`` waits for each decision at its due minute, which
makes a run with the rules backend reproducible byte for byte.

Follow-through (on by default unless lockstep): a decision gives three purposes and one is acted
on. While the next decision is being made, a character does not stand still: it takes up one of
the two purposes it did not choose last time (the chooser picks, with today's needs), marked
provisional. When the new decision lands, the provisional action stops where it is (its effects
count in proportion to the time spent) and the new decision takes over. An interrupting event voids
the leftover purposes: they answered a situation that no longer holds.

Reflex (on with follow-through): when there is no leftover purpose that fits the moment (a
character's first decision, or the one after an interrupting event), the character acts at once
on the rules' reading of its situation (the same rules the service falls back to, built in well
under a millisecond), also provisional, until the model's decision lands: at the start of a
world nobody stands frozen waiting for the model, and a fire gets a first reaction in the tick it
is seen, not when the model has answered.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from characters import Cast, CharacterProfile, Situation
from engine.atomic import write_text_atomic
from engine.backends.rules import build_rule_motivation
from engine.service import DecisionService
from engine.sim.agent import Agent, CurrentAction
from engine.sim.chooser import Chooser, WeightedChooser
from engine.sim.events import Event, EventBus
from engine.sim.mapper import ActionMapper, KeywordMapper, MappedAction
from engine.sim.situation import build_profile, build_situation
from engine.sim.world import NEEDS, WorldSpec, format_clock, load_world
from engine.ticket import Ticket

SAVE_VERSION = 1
_FELT = {
    "socialize": "stopped to talk with me",
    "help": "came to help me",
    "confront": "confronted me angrily",
    "apologize": "apologized to me",
}
INTERRUPT_IMPORTANCE = 7
REFLEX_SEED = 0x5EED  # mixed into a decision's seed for its reflex
NEIGHBOUR_MINUTES = 5  # an event at a place is seen from places this close (the square next to the bakery)


class SaveError(ValueError):
    """A save that cannot be loaded: truncated, corrupt, or of another version or world."""


@dataclass
class _Pending:
    ticket: Ticket
    due: int
    seed: int
    priority: int
    profile: CharacterProfile
    situation: Situation


class Simulation:
    """A running world: clock, agents, pending decisions, event bus."""

    def __init__(
        self,
        world: WorldSpec,
        cast: Cast,
        service: DecisionService,
        *,
        seed: int = 0,
        chooser: Chooser | None = None,
        mapper: ActionMapper | None = None,
        lockstep: bool = False,
        deadline_s: float | None = None,
        think_minutes: int = 1,
        tick_minutes: int = 5,
        follow_through: bool | None = None,
        reflex: bool | None = None,
    ) -> None:
        self.world = world
        self.cast = cast
        self.service = service
        self.seed = seed
        self.rng = random.Random(seed)
        self.chooser = chooser or WeightedChooser(world)
        self.mapper = mapper or KeywordMapper(world)
        self.lockstep = lockstep
        self.follow_through = (not lockstep) if follow_through is None else follow_through
        if reflex and not self.follow_through:
            raise ValueError("reflex needs follow_through: a reflex is a provisional action")
        self.reflex = self.follow_through if reflex is None else reflex
        self.deadline_s = deadline_s
        self.think_minutes = think_minutes
        self.tick_minutes = tick_minutes
        self.clock = world.start_minute()
        self.bus = EventBus()
        self.pending: dict[str, _Pending] = {}
        self.interrupted: set[str] = set()
        self.counters = {"decisions": 0, "waits": 0, "ran_ahead": 0, "unmapped": 0, "interactions": 0,
                         "follow_through": 0, "cut_short": 0, "reflex": 0}  # fmt: skip
        self.agents: dict[str, Agent] = {}
        for profile in cast.characters:
            res = world.residents[profile.name]
            agent = Agent(profile=profile, place=res.home, home=res.home, work=res.work)
            for need in NEEDS:
                agent.needs[need] = round(self.rng.uniform(45, 90), 1)
            self.agents[profile.name] = agent
        for agent in self.agents.values():
            for other in self.agents:
                if other == agent.name:
                    continue
                rel = agent.relationship(other)
                known = other in agent.profile.relationships
                rel.affinity, rel.familiarity = (25.0, 60.0) if known else (0.0, 25.0)
        self.initial_affinity = {
            (a.name, o): r.affinity for a in self.agents.values() for o, r in a.relationships.items()
        }

    @classmethod
    def from_world(cls, world: str | Path, service: DecisionService, **kwargs: Any) -> Simulation:
        """Load a world file (or a shipped world by name) and start a simulation on it."""
        spec, cast = load_world(world)
        return cls(spec, cast, service, **kwargs)

    # -- loop --------------------------------------------------------------------------------

    def step(self, minutes: int) -> None:
        """Advance the world by ``minutes`` simulated minutes, in ticks."""
        end = self.clock + minutes
        while self.clock < end:
            dt = min(self.tick_minutes, end - self.clock)
            self.clock += dt
            for agent in self._ordered():
                agent.decay(dt)
            self._finish_actions()
            self.collect_decisions()
            self._request_decisions()

    def _ordered(self) -> list[Agent]:
        return [self.agents[name] for name in sorted(self.agents)]

    def _publish(
        self, kind: str, text: str, actors: list[str], place: str | None = None, **data: Any
    ) -> None:
        self.bus.publish(Event(self.clock, kind, text, actors, place, data))

    def _finish_actions(self) -> None:
        for agent in self._ordered():
            if agent.action is not None and agent.status == "acting" and agent.action.end <= self.clock:
                agent.apply(self.world.action(agent.action.name).effects)
                agent.status = "idle"

    def _request_decisions(self) -> None:
        for agent in self._ordered():
            if agent.status != "idle":
                continue
            if agent.name not in self.pending:
                self._submit(agent)
            agent.status = "acting" if self._follow_through(agent) else "thinking"

    def _submit(self, agent: Agent) -> None:
        profile = build_profile(agent)
        situation = build_situation(agent, self.agents, self.clock)
        interrupted = agent.name in self.interrupted
        priority = 10 if interrupted else 1 + len(agent.pressing())
        seed = self.rng.randrange(2**31)
        ticket = self.service.submit(
            profile, situation, priority=priority, deadline_s=self.deadline_s, seed=seed
        )
        self.pending[agent.name] = _Pending(
            ticket, self.clock + self.think_minutes, seed, priority, profile, situation
        )
        self.interrupted.discard(agent.name)
        if self.reflex and (interrupted or agent.motivation is None) and not agent.spare:
            # not the ticket's seed: a deadline fallback (the same rules) would repeat the reaction
            agent.reflex = list(build_rule_motivation(profile, situation, seed ^ REFLEX_SEED).purposes())

    def _follow_through(self, agent: Agent) -> bool:
        """Start a leftover purpose of the last decision, or a reflex, while a new decision is made."""
        if not self.follow_through:
            return False
        if agent.motivation is not None and agent.spare:
            purposes = agent.motivation.purposes()
            options = self._map(agent, [purposes[i] for i in agent.spare])
            pick = self.chooser.choose(agent, options, self.rng)
            index = agent.spare.pop(pick)
            self.counters["follow_through"] += 1
            self._start_action(agent, purposes[index], options[pick], provisional=True)
            return True
        if self.reflex and agent.reflex:  # in the rules' order: what is happening comes first
            purpose = agent.reflex.pop(0)
            self.counters["reflex"] += 1
            self._start_action(agent, purpose, self._map(agent, [purpose])[0], provisional=True, reflex=True)
            return True
        return False

    def _cut_short(self, agent: Agent) -> None:
        """Stop a provisional action where it is; its effects count for the share of it done."""
        action = agent.action
        if action is None or not action.provisional or agent.status != "acting":
            return
        spec = self.world.action(action.name)
        done = self.clock - action.start - action.travel_minutes
        share = min(1.0, max(0.0, done / spec.duration_minutes)) if spec.duration_minutes else 1.0
        agent.apply({need: delta * share for need, delta in spec.effects.items()})
        agent.status = "idle"
        self.counters["cut_short"] += 1

    def collect_decisions(self) -> None:
        """Apply decisions that are due and ready (in lockstep, wait for due ones)."""
        for agent in self._ordered():
            pending = self.pending.get(agent.name)
            if pending is None or self.clock < pending.due:
                continue
            ticket = pending.ticket
            if not ticket.done():
                if not self.lockstep:
                    self.counters["ran_ahead"] += 1
                    continue
                self.counters["waits"] += 1
                ticket.wait()
            del self.pending[agent.name]
            if ticket.cancelled():
                if agent.status == "thinking":
                    agent.status = "idle"
                continue
            self._cut_short(agent)
            self._apply_decision(agent, ticket)

    def _apply_decision(self, agent: Agent, ticket: Ticket) -> None:
        result = ticket.result()
        options = self._map(agent, result.motivation.purposes())
        index = self.chooser.choose(agent, options, self.rng)
        agent.motivation, agent.chosen = result.motivation, index
        agent.spare = [i for i in range(len(options)) if i != index]
        agent.reflex = []
        agent.decision_source, agent.decision_latency_ms = result.source, result.latency_ms
        agent.decisions += 1
        self.counters["decisions"] += 1
        self._start_action(
            agent,
            result.motivation.purposes()[index],
            options[index],
            data={
                "purposes": list(result.motivation.purposes()),
                "chosen": index,
                "source": result.source,
                "reason": result.reason,
            },
        )

    def _map(self, agent: Agent, purposes: Sequence[str]) -> list[MappedAction]:
        """Each purpose as the catalog action (and target) it maps to for ``agent``."""
        people = sorted(self.agents)
        return [self.mapper.map(p, agent.name, people, agent.home, agent.work) for p in purposes]

    def _start_action(
        self,
        agent: Agent,
        purpose: str,
        mapped: MappedAction,
        *,
        provisional: bool = False,
        reflex: bool = False,
        data: dict[str, Any] | None = None,
    ) -> None:
        """Begin the action a purpose maps to: travel, status, memory, interaction, an event."""
        spec = self.world.action(mapped.action)
        target = mapped.target if mapped.target in self.agents else None
        place = mapped.place or (self.agents[target].place if target else agent.place)
        travel = self.world.travel(agent.place, place)
        agent.action = CurrentAction(
            spec.name, purpose, self.clock, self.clock + travel + spec.duration_minutes, place, target,
            travel, provisional, reflex,
        )  # fmt: skip
        agent.status = "acting"
        moved = place != agent.place
        agent.place = place
        self.bus.publish(
            Event(
                self.clock,
                "follow" if provisional else "decision",
                f"{purpose} -> {spec.name}"
                + (f" ({target})" if target else "")
                + (f" @ {place}" if moved else "")
                + (
                    " (first reaction, while deciding)"
                    if reflex
                    else " (while deciding)"
                    if provisional
                    else ""
                ),
                [agent.name, *([target] if target else [])],
                place,
                {
                    **(data or {}),
                    "action": spec.name,
                    "target": target,
                    **({"reflex": True} if reflex else {}),
                },
            )
        )
        if mapped.unmapped:
            self.counters["unmapped"] += 1
            self._publish(
                "unmapped",
                f"{agent.name}: nothing in the catalog fits {purpose!r}; doing a free action",
                [agent.name],
                place,
            )
        agent.remember(
            self.clock, purpose, spec.importance, [target] if target else [], place, own_action=True
        )
        if target and self.agents[target].place == place:
            self._interact(agent, self.agents[target], spec.name, spec.affinity, spec.importance, purpose)

    def _interact(
        self, actor: Agent, target: Agent, action: str, affinity: float, importance: int, purpose: str
    ) -> None:
        mine, theirs = actor.relationship(target.name), target.relationship(actor.name)
        mine.affinity = max(-100.0, min(100.0, mine.affinity + affinity))
        theirs.affinity = max(-100.0, min(100.0, theirs.affinity + affinity * 0.7))
        mine.familiarity = min(100.0, mine.familiarity + 5)
        theirs.familiarity = min(100.0, theirs.familiarity + 5)
        felt = _FELT.get(action, "spent time with me")
        target.remember(self.clock, f"{actor.name} {felt}", importance + 1, [actor.name])
        self.counters["interactions"] += 1
        self._publish("interaction", f"{actor.name} -> {target.name}: {action} (affinity {affinity:+.0f})",
                      [actor.name, target.name], actor.place, action=action, affinity=affinity)  # fmt: skip

    # -- designer and player events ---------------------------------------------------------

    def inject_event(
        self,
        text: str,
        *,
        place: str | None = None,
        character: str | None = None,
        importance: int = 7,
        reach_minutes: int | None = NEIGHBOUR_MINUTES,
    ) -> list[str]:
        """An event at a place, for one character, or for everyone; returns who it reached.

        An event at a place reaches everyone there and everyone at a place next to it (at most
        ``reach_minutes`` of travel away; ``None`` keeps it to the place itself): a fire in the
        bakery is seen from the square. It enters their memories (and so their situations); at
        importance >= 7 it interrupts what they are doing and asks for a new decision at high
        priority.
        """
        if place is not None and place not in {p.name for p in self.world.places}:
            raise ValueError(f"unknown place {place!r}")
        if character is not None and character not in self.agents:
            raise ValueError(f"unknown character {character!r}")
        near = self.neighbourhood(place, reach_minutes) if place is not None else set()
        reached = [a for a in self._ordered()
                   if (character is None or a.name == character) and (place is None or a.place in near)]  # fmt: skip
        for agent in reached:
            agent.remember(self.clock, text, importance, [], place or agent.place)
            if importance >= INTERRUPT_IMPORTANCE:
                self.interrupted.add(agent.name)
                agent.spare = []  # the leftover purposes answered a situation that no longer holds
                agent.reflex = []  # likewise a first reaction to what came before (rebuilt on submit)
                pending = self.pending.pop(agent.name, None)
                if pending is not None:
                    pending.ticket.cancel()
                agent.status = "idle"
        names = [a.name for a in reached]
        self._publish("injected", f"{text} (reached {len(names)})", names, place, importance=importance)
        self._request_decisions()
        return names

    def neighbourhood(self, place: str, reach_minutes: int | None = NEIGHBOUR_MINUTES) -> set[str]:
        """The place and every place at most ``reach_minutes`` of travel from it."""
        if reach_minutes is None:
            return {place}
        return {
            p.name
            for p in self.world.places
            if p.name == place or self.world.travel(place, p.name) <= reach_minutes
        }

    # -- persistence ------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """The whole world state as JSON-ready data."""
        return {
            "version": SAVE_VERSION,
            "world": self.world.name,
            "clock": self.clock,
            "seed": self.seed,
            "rng": _rng_to_json(self.rng.getstate()),
            "counters": self.counters,
            "interrupted": sorted(self.interrupted),
            "agents": {name: a.to_dict() for name, a in sorted(self.agents.items())},
            "pending": {
                name: {
                    "due": p.due,
                    "seed": p.seed,
                    "priority": p.priority,
                    "profile": p.profile.model_dump(mode="json"),
                    "situation": p.situation.model_dump(mode="json"),
                }
                for name, p in sorted(self.pending.items())
            },
            "initial_affinity": [[a, o, v] for (a, o), v in sorted(self.initial_affinity.items())],
            "events": [json.loads(e.to_json()) for e in list(self.bus.recent)[-200:]],
        }

    def save(self, path: str | Path) -> Path:
        """Write the state atomically as JSON."""
        return write_text_atomic(path, json.dumps(self.to_state(), ensure_ascii=False, sort_keys=True))

    @classmethod
    def load(
        cls, path: str | Path, world: WorldSpec, cast: Cast, service: DecisionService, **kwargs: Any
    ) -> Simulation:
        """Restore a saved state; pending decisions are re-submitted with their original seeds.

        A truncated or corrupt file raises SaveError naming it; the file is left as it is and no
        decision is submitted, so the game can fall back to an earlier save.
        """
        try:
            state = json.loads(Path(path).read_text("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise SaveError(f"{path}: not a complete save, truncated or corrupt ({err})") from None
        if (
            not isinstance(state, dict)
            or state.get("version") != SAVE_VERSION
            or state.get("world") != world.name
        ):
            raise SaveError(f"{path}: not a version-{SAVE_VERSION} save of world {world.name!r}")
        try:
            sim = cls(world, cast, service, seed=state["seed"], **kwargs)
            sim.clock = state["clock"]
            sim.rng.setstate(_rng_from_json(state["rng"]))
            sim.counters.update(state["counters"])
            sim.interrupted = set(state["interrupted"])
            sim.agents = {name: Agent.from_dict(data) for name, data in state["agents"].items()}
            sim.initial_affinity = {(a, o): v for a, o, v in state["initial_affinity"]}
            pending = {
                name: (
                    p["due"],
                    p["seed"],
                    p["priority"],
                    CharacterProfile.model_validate(p["profile"]),
                    Situation.model_validate(p["situation"]),
                )
                for name, p in state["pending"].items()
            }
            events = [Event(**record) for record in state["events"]]
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as err:
            raise SaveError(f"{path}: a damaged save ({type(err).__name__}: {err})") from None
        # submitted only once the whole file has read, so a damaged save starts no decision
        for name, (due, seed, priority, profile, situation) in pending.items():
            ticket = service.submit(
                profile, situation, priority=priority, deadline_s=sim.deadline_s, seed=seed
            )
            sim.pending[name] = _Pending(ticket, due, seed, priority, profile, situation)
        sim.bus.recent.extend(events)
        return sim

    # -- reporting ----------------------------------------------------------------------------

    def relationship_changes(self, top: int = 5) -> list[tuple[str, str, float]]:
        """The biggest affinity changes since the start, largest first."""
        deltas = []
        for agent in self.agents.values():
            for other, rel in agent.relationships.items():
                delta = rel.affinity - self.initial_affinity.get((agent.name, other), 0.0)
                if delta:
                    deltas.append((agent.name, other, delta))
        return sorted(deltas, key=lambda d: (-abs(d[2]), d[0], d[1]))[:top]

    def describe_clock(self) -> str:
        """The simulated time as text."""
        return format_clock(self.clock)


def _rng_to_json(state: tuple[Any, ...]) -> list[Any]:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _rng_from_json(data: list[Any]) -> tuple[Any, ...]:
    return (data[0], tuple(data[1]), data[2])
