"""Action mappers: purpose text -> a catalog action plus its target place or character."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from engine.sim.world import ActionSpec, WorldSpec

_WORD = re.compile(r"[a-z']+")
# words whose stems collide with a keyword's ("notes" -> "not") but never name an action
_NEVER_KEYWORDS = {"not", "no", "nor", "nothing"}


@dataclass(frozen=True)
class MappedAction:
    """What a purpose turns into."""

    action: str
    place: str | None
    target: str | None
    matched: tuple[str, ...]  # the keywords that decided it; empty for the free fallback

    @property
    def unmapped(self) -> bool:
        """True when nothing in the catalog fitted."""
        return self.action == "free"


class ActionMapper(Protocol):
    """Turns a purpose into an action."""

    def map(self, purpose: str, actor: str, people: Sequence[str], home: str, work: str) -> MappedAction:
        """Map one purpose for ``actor``."""
        ...


def _stem(word: str) -> str:
    """Crude suffix stripping, applied alike to keywords and purposes ('apologizes' ~ 'apologize')."""
    for suffix in ("ing", "ies", "es", "ed", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    return word[:-1] if word.endswith("e") and len(word) > 3 else word


class KeywordMapper:
    """Scores catalog actions by keyword hits (light stemming), finds named people and places.

    The first words of a purpose carry its verb, so hits there count double: in "Maya fixes the
    oven, because customers are waiting" the action is *fixing*, not the customers' errand. A
    keyword with a space is a phrase ("get on with", "keep things running"): it matches the words in
    order and outweighs a single word, because the model's stock phrases say the most; in the
    reason at the end of a purpose it counts half.
    """

    PHRASE_WEIGHT = 3.0

    def __init__(self, world: WorldSpec) -> None:
        self.world = world
        self._keywords: dict[str, set[str]] = {
            a.name: {_stem(k.lower()) for k in a.keywords if " " not in k.strip()} for a in world.actions
        }
        self._phrases: dict[str, list[str]] = {
            a.name: [
                " ".join(_stem(w) for w in _WORD.findall(k.lower())) for k in a.keywords if " " in k.strip()
            ]
            for a in world.actions
        }
        self._places = {p.name: {p.name.lower(), *[a.lower() for a in p.aliases]} for p in world.places}

    def _find_people(self, text: str, actor: str, people: Sequence[str]) -> str | None:
        lowered = text.lower()
        best: tuple[int, str] | None = None
        for person in people:
            if person == actor:
                continue
            tokens = [
                t.strip(".").lower()
                for t in person.split()
                if t.strip(".").lower() not in {"dr", "mr", "mrs", "ms", "lord", "sister"}
            ]
            for token in tokens:
                found = re.search(rf"\b{re.escape(token)}\b", lowered)
                if found and (best is None or found.start() < best[0]):
                    best = (found.start(), person)
        return best[1] if best else None

    def _find_place(self, words: list[str], text: str) -> str | None:
        lowered = text.lower()
        for place in self._places:
            if place.lower() in lowered:
                return place
        for word in words:
            for place, names in self._places.items():
                if word in names:
                    return place
        return None

    def map(self, purpose: str, actor: str, people: Sequence[str], home: str, work: str) -> MappedAction:
        """The best-scoring action, with a target when the action takes one."""
        body = purpose
        for token in actor.split():
            body = re.sub(rf"\b{re.escape(token)}\b", " ", body)
        words = _WORD.findall(body.lower())
        stems = [_stem(w) for w in words]
        scores: dict[str, float] = {}
        hits: dict[str, list[str]] = {}
        first_hit: dict[str, int] = {}
        for action, keys in self._keywords.items():
            for i, stem in enumerate(stems):
                if stem in keys and words[i] not in _NEVER_KEYWORDS:
                    first_hit.setdefault(action, i)
                    scores[action] = scores.get(action, 0.0) + (2.0 if i < 4 else 1.0)
                    hits.setdefault(action, []).append(words[i])
        joined = f" {' '.join(stems)} "
        for action, phrases in self._phrases.items():
            for phrase in phrases:
                at = joined.find(f" {phrase} ")
                if at >= 0:
                    position = joined[:at].count(" ")
                    first_hit[action] = min(first_hit.get(action, position), position)
                    early = position < 4  # the phrase starts among the first words
                    scores[action] = scores.get(action, 0.0) + self.PHRASE_WEIGHT * (1.0 if early else 0.5)
                    hits.setdefault(action, []).append(phrase)
        target = self._find_people(body, actor, people)
        if target:
            for candidate in self.world.actions:
                if candidate.targets == "character" and candidate.name in scores:
                    scores[candidate.name] += 0.5
        if not scores:
            return MappedAction("free", None, None, ())
        # on a tie the action named first wins: a purpose leads with its verb
        best = max(scores, key=lambda a: (scores[a], -first_hit.get(a, 99), -list(self._keywords).index(a)))
        spec: ActionSpec = self.world.action(best)
        place = self._find_place(words, body)
        if spec.kind == "work" and place is None:
            place = work
        if spec.kind == "rest" and place is None:
            place = home
        return MappedAction(best, place, target if spec.targets == "character" else None, tuple(hits[best]))
