"""A character's live state in the simulation: place, action, needs, mood, relationships, memory."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from characters import CharacterProfile, Motivation
from engine.sim.memory import Memory, MemoryItem
from engine.sim.world import NEEDS

# Needs are 0 (desperate) .. 100 (fully met); points lost per simulated hour.
NEED_DECAY_PER_HOUR = {"energy": 4.0, "hunger": 6.0, "social": 3.0, "fun": 3.0, "money": 0.5}
PRESSING_BELOW = 35.0

Status = Literal["idle", "thinking", "acting"]


@dataclass
class Relationship:
    """How one character feels about another."""

    affinity: float = 0.0  # -100 hostile .. 100 devoted
    familiarity: float = 0.0  # 0 strangers .. 100 intimate

    def describe(self) -> str:
        """A few words for the situation text."""
        if self.affinity >= 40:
            feeling = "likes them a lot"
        elif self.affinity >= 10:
            feeling = "likes them"
        elif self.affinity <= -30:
            feeling = "resents them"
        elif self.affinity <= -10:
            feeling = "is wary of them"
        else:
            feeling = "feels neutral"
        return feeling if self.familiarity >= 20 else f"{feeling}, barely knows them"


@dataclass
class CurrentAction:
    """What a character is doing now."""

    name: str
    purpose: str
    start: int
    end: int
    place: str
    target: str | None = None
    travel_minutes: int = 0
    provisional: bool = False  # a purpose left over from the last decision, done while a new one is made
    reflex: bool = False  # provisional, and the rules' first reaction rather than a leftover purpose


@dataclass
class Agent:
    """One simulated character."""

    profile: CharacterProfile
    place: str
    home: str
    work: str
    needs: dict[str, float] = field(default_factory=lambda: {n: 70.0 for n in NEEDS})
    relationships: dict[str, Relationship] = field(default_factory=dict)
    memory: Memory = field(default_factory=Memory)
    action: CurrentAction | None = None
    status: Status = "idle"
    motivation: Motivation | None = None
    chosen: int | None = None
    decision_source: str | None = None
    decision_latency_ms: float | None = None
    decisions: int = 0
    spare: list[int] = field(default_factory=list)  # purposes of ``motivation`` not acted on yet
    # first reactions from the rules while a decision is made and no leftover purpose fits the moment
    # (no decision yet, or an event voided them); dropped when the decision lands
    reflex: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The character's name."""
        return self.profile.name

    def decay(self, minutes: float) -> None:
        """Needs fall as time passes."""
        for need, rate in NEED_DECAY_PER_HOUR.items():
            self.needs[need] = max(0.0, self.needs[need] - rate * minutes / 60.0)

    def apply(self, effects: dict[str, float]) -> None:
        """Add need deltas, clamped to 0..100."""
        for need, delta in effects.items():
            self.needs[need] = min(100.0, max(0.0, self.needs[need] + delta))

    def pressing(self) -> list[str]:
        """Needs below the pressing threshold, worst first."""
        low = [(v, n) for n, v in self.needs.items() if v < PRESSING_BELOW]
        return [n for _, n in sorted(low)]

    def mood(self) -> str:
        """One word derived from needs."""
        pressing = self.pressing()
        if pressing:
            return {
                "energy": "exhausted",
                "hunger": "hungry",
                "social": "lonely",
                "fun": "bored",
                "money": "anxious",
            }[pressing[0]]
        mean = sum(self.needs.values()) / len(self.needs)
        return "cheerful" if mean >= 75 else "content" if mean >= 55 else "restless"

    def relationship(self, other: str) -> Relationship:
        """The relationship toward ``other`` (created neutral on first use)."""
        return self.relationships.setdefault(other, Relationship())

    def remember(
        self,
        minute: int,
        text: str,
        importance: int,
        people: list[str] | None = None,
        place: str | None = None,
        *,
        own_action: bool = False,
    ) -> None:
        """Add a memory."""
        self.memory.add(MemoryItem(minute, text, importance, people or [], place or self.place, own_action))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state (profile included, so a save is self-contained)."""
        return {
            "profile": self.profile.model_dump(mode="json"),
            "place": self.place,
            "home": self.home,
            "work": self.work,
            "needs": self.needs,
            "relationships": {k: [v.affinity, v.familiarity] for k, v in self.relationships.items()},
            "memory": [m.to_dict() for m in self.memory.items],
            "action": None if self.action is None else vars(self.action),
            "status": self.status,
            "motivation": None if self.motivation is None else self.motivation.model_dump(),
            "chosen": self.chosen,
            "decision_source": self.decision_source,
            "decision_latency_ms": self.decision_latency_ms,
            "decisions": self.decisions,
            "spare": list(self.spare),
            "reflex": list(self.reflex),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Agent:
        """Rebuild an agent saved by ``to_dict``."""
        agent = cls(
            profile=CharacterProfile.model_validate(data["profile"]),
            place=data["place"],
            home=data["home"],
            work=data["work"],
            needs={k: float(v) for k, v in data["needs"].items()},
        )
        agent.relationships = {k: Relationship(a, f) for k, (a, f) in data["relationships"].items()}
        # saves before own_action: the character's own purposes are the memories that open with
        # its name (what others did to it opens with theirs)
        agent.memory = Memory(
            [MemoryItem(**{"own_action": m["text"].startswith(agent.name), **m}) for m in data["memory"]]
        )
        agent.action = None if data["action"] is None else CurrentAction(**data["action"])  # older: no reflex
        agent.status = data["status"]
        agent.motivation = (
            None if data["motivation"] is None else Motivation.model_validate(data["motivation"])
        )
        agent.chosen = data["chosen"]
        agent.decision_source = data["decision_source"]
        agent.decision_latency_ms = data["decision_latency_ms"]
        agent.decisions = data["decisions"]
        agent.spare = [int(i) for i in data.get("spare", [])]  # saves from before follow-through lack it
        agent.reflex = [str(p) for p in data.get("reflex", [])]
        return agent
