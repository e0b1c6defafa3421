"""Turn world state into the profile and situation a decision request carries."""

from __future__ import annotations

from collections.abc import Mapping

from characters import CharacterProfile, Situation
from engine.sim.agent import Agent
from engine.sim.world import format_clock

_NEED_WORDS = {
    "energy": "exhausted",
    "hunger": "hungry",
    "social": "lonely",
    "fun": "bored",
    "money": "worried about money",
}
RECENT_EVENT_MINUTES = 180


def _pronoun(profile: CharacterProfile) -> str:
    gender = (profile.gender or profile.description.split(",", 1)[0]).strip().lower()
    return {"female": "She", "male": "He"}.get(gender, profile.name.split()[0])


def build_profile(agent: Agent) -> CharacterProfile:
    """The profile, its background extended with short summaries of important memories."""
    important = agent.memory.important(threshold=6, k=3)
    if not important:
        return agent.profile
    lately = "; ".join(m.text.rstrip(".") for m in important)
    background = f"{agent.profile.background} Lately: {lately}.".strip()
    return agent.profile.model_copy(update={"background": background[:1500]})


def build_situation(agent: Agent, agents: Mapping[str, Agent], minute: int) -> Situation:
    """Time, place, who is near and how the character feels about them, needs, relevant memories."""
    others = [a for name, a in sorted(agents.items()) if name != agent.name and a.place == agent.place]
    nearby = [f"{o.name} ({agent.relationship(o.name).describe()})" for o in others]
    pressing = agent.pressing()
    query = " ".join([agent.place, *(o.name for o in others), *pressing])
    memories = agent.memory.retrieve(minute, query=query, k=3)
    # the headline is the most important recent event, not merely the most relevant memory, and
    # never the character's own last purpose: fed back as news, an emergency response read as a
    # new emergency and the character answered it again and again
    urgent = sorted(
        (
            m
            for m in agent.memory.items
            if m.importance >= 6 and minute - m.minute <= RECENT_EVENT_MINUTES and not m.own_action
        ),
        key=lambda m: (m.importance, m.minute),
        reverse=True,
    )
    parts = [f"{format_clock(minute)}, at {agent.place}."]
    hour = (minute % 1440) // 60
    if hour >= 22 or hour < 5:
        parts.append("It is late at night.")
    if urgent:
        text = urgent[0].text
        parts.append(text if text[-1:] in ".!?" else text + ".")
    if others:
        names = [o.name for o in others[:4]]
        who = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        parts.append(f"{who} {'is' if len(names) == 1 else 'are'} here.")
    if pressing:
        feelings = " and ".join(_NEED_WORDS[n] for n in pressing[:2])
        parts.append(f"{_pronoun(agent.profile)} is {feelings}.")
    if not urgent and not pressing:
        parts.append("Nothing urgent is happening; the day goes on.")
    return Situation(
        context=" ".join(parts),
        time=format_clock(minute),
        location=agent.place,
        nearby=nearby[:8],
        recent_events=[m.text[:200] for m in memories],
    )
