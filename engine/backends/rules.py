"""The rules backend: three distinct purposes from the profile and situation, with no model.

It is what the service falls back to on timeout or failure, so it must never fail itself. Its
answers are plainer than a model's and every result that uses it is flagged ``fallback``.
"""

from __future__ import annotations

import hashlib
import random
import re
import time
from collections.abc import Sequence

from characters import PURPOSE_MAX_CHARS, CharacterProfile, Motivation, Situation, name_tokens
from engine.request import DecisionRequest, RawDecision

_SENTENCE = re.compile(r"(?<!\bMr\.)(?<!\bDr\.)(?<!\bMs\.)(?<!\bMrs\.)(?<!\bSt\.)(?<=[.!?])\s+")

_URGENT = (
    "{name} deals with what is happening right away: {gist}.",
    "{name} steps in to handle it at once: {gist}.",
    "{name} puts everything else aside to face this: {gist}.",
)
# An emergency (fire, injury, someone trapped) calls for going to help, not for an errand: these
# lead with the words a world's catalog maps to its emergency and help actions.
_EMERGENCY_RESPONSE = (
    "{name} rushes over to help at once: {gist}.",
    "{name} drops everything and rushes to help: {gist}.",
    "{name} rushes to the scene to do whatever is needed: {gist}.",
)
_EMERGENCY = re.compile(
    r"\b(fire|flames?|burning|smoke|flood(s|ing|ed)?|storm|injured|hurt|bleeding|wounded|trapped|"
    r"collapsed?|overturned|crash(ed)?|accident|drowning|unconscious|fight|attack(s|ed)?|missing|"
    r"screams?|screaming|alarm|explosion)\b",
    re.I,
)
_URGENT_REASON = (
    " It cannot wait.",
    " Nobody else will do it properly.",
    " Waiting would only make it worse.",
)
_LONG_GAME = (
    "{name} keeps the bigger aim in view and works to {goal}.",
    "{name} plans ahead and sets aside time to {goal}.",
    "{name} takes a step closer to the goal: {goal}.",
)
# whole words only: "broke out" is no money worry, nor is "parent" rent
_NEEDS = (
    (r"late at night", "{name} goes home to sleep, because it is late and tomorrow starts early."),
    (r"exhausted|tired|sleepy|worn out", "{name} goes home to rest, because exhaustion is taking over."),
    (
        r"hungry|starving|skipped breakfast",
        "{name} stops to eat something, because hunger is hard to ignore.",
    ),
    (r"lonely|alone", "{name} looks for a friendly face to talk to, to feel less alone."),
    (r"bored|restless", "{name} goes for a walk to shake off the boredom."),
    (
        r"money|broke(?!\s+(?:out|down|into|in|through|loose|open|off|up|free))|rent|debts?",
        "{name} goes to work an extra shift, because money is tight.",
    ),
)
_NEED_PATTERNS = tuple((re.compile(rf"\b(?:{words})\b", re.I), line) for words, line in _NEEDS)
_CLOCK = re.compile(r"\b\d{1,2}:\d{2}\b")
# Sentences a simulation adds that describe the scene, not something to respond to.
_SCENERY = re.compile(
    r"\b(is|are) here$|nothing urgent|late at night|^\S+ is (exhausted|hungry|lonely|bored|worried)", re.I
)
_ROUTINE = (
    "{name} gets on with the day's usual work.",
    "{name} keeps to the routine and gets the day's tasks done.",
)
_BACKGROUND = (
    "{name} acts with the old worry in mind: {gist}.",
    "{name} cannot shake what weighs on {pronoun}: {gist}.",
)
_SOCIAL = (
    "{name} seeks out {other} to talk it through and ask for help.",
    "{name} checks on {other} before deciding anything else.",
    "{name} tells {other} what is going on, hoping for advice.",
)
_ALONE = (
    "{name} steps away for a moment to calm down and think it over.",
    "{name} takes a short break to eat, rest and think clearly again.",
    "{name} writes down every worry and makes a plan.",
)


def _incidents(text: str) -> list[str]:
    sentences = [s.rstrip(".!?") for s in _SENTENCE.split(" ".join(text.split())) if s.strip()]
    return [s for s in sentences if not _CLOCK.search(s) and not _SCENERY.search(s)]


def _gist(text: str, keep_capitalized: set[str], limit: int = 90) -> str:
    """The first sentence with some substance (skips 'Late afternoon.'), lower-cased to follow a colon."""
    sentences = [s.rstrip(".!?") for s in _SENTENCE.split(" ".join(text.split())) if s.strip()]
    sentences = [s for s in sentences if not _CLOCK.search(s) and not _SCENERY.search(s)] or sentences
    first = next((s for s in sentences if len(s.split()) >= 4), sentences[0] if sentences else text)
    if len(first) > limit:
        first = first[:limit].rsplit(" ", 1)[0]
    head = first.split(" ", 1)[0]
    if head in keep_capitalized or (len(head) > 1 and head.isupper()):
        return first
    return first[:1].lower() + first[1:]


def _pronoun(profile: CharacterProfile) -> str:
    gender = (profile.gender or profile.description.split(",", 1)[0]).strip().lower()
    if gender in {"female", "woman", "girl", "f"}:
        return "her"
    if gender in {"male", "man", "boy", "m"}:
        return "him"
    return "them"


_SUBJECT = {"her": "she", "him": "he", "them": "they"}
_POSSESSIVE = {"her": "her", "him": "his", "them": "their"}


def _unnamed(text: str, profile: CharacterProfile) -> str:
    """``text`` with the character's own name turned into a pronoun, so a purpose never says it twice."""
    pronoun = _pronoun(profile)
    words = sorted(
        {
            profile.name,
            *(w for w in profile.name.split() if w.strip(".").lower() in name_tokens(profile.name)),
        },
        key=len,
        reverse=True,
    )
    for word in words:
        pattern = rf"(?<![A-Za-z']){re.escape(word)}(?![A-Za-z])"
        text = re.sub(pattern + r"'s\b", _POSSESSIVE[pronoun], text)
        text = re.sub(pattern, _SUBJECT[pronoun], text)
    return text


def _fit(text: str) -> str:
    if len(text) <= PURPOSE_MAX_CHARS:
        return text
    return text[: PURPOSE_MAX_CHARS - 1].rsplit(" ", 1)[0] + "."


def _rng_for(profile: CharacterProfile, situation: Situation, seed: int) -> random.Random:
    digest = hashlib.sha256(f"{profile.name}\x00{situation.context}\x00{seed}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def build_rule_motivation(profile: CharacterProfile, situation: Situation, seed: int = 0) -> Motivation:
    """Three distinct purposes (urgent, long-term, social or self-care) from the inputs alone."""
    rng = _rng_for(profile, situation, seed)
    name = profile.name
    keep = {word for text in (name, *profile.relationships, *situation.nearby) for word in text.split()}
    incidents = _incidents(situation.context)
    if incidents:
        emergency = any(_EMERGENCY.search(s) for s in incidents)
        templates = _EMERGENCY_RESPONSE if emergency else _URGENT
        urgent = rng.choice(templates).format(
            name=name, gist=_unnamed(_gist(situation.context, keep), profile)
        )
        urgent += rng.choice(_URGENT_REASON)
    else:
        urgent = rng.choice(_ROUTINE).format(name=name)
    if profile.goals:
        goal = _unnamed(_gist(rng.choice(profile.goals), keep, 70), profile)
        second = rng.choice(_LONG_GAME).format(name=name, goal=goal)
    elif profile.background:
        second = rng.choice(_BACKGROUND).format(
            name=name, pronoun=_pronoun(profile), gist=_unnamed(_gist(profile.background, keep), profile)
        )
    else:
        second = f"{name} falls back on the habits of a lifetime and gets on with the day's work."
    others = [n.split(" (")[0] for n in situation.nearby] or list(profile.relationships)
    need = next((line for pattern, line in _NEED_PATTERNS if pattern.search(situation.context)), None)
    if need is not None:
        third = need.format(name=name)
    elif others:
        third = rng.choice(_SOCIAL).format(name=name, other=rng.choice(others))
    else:
        third = rng.choice(_ALONE).format(name=name)
    return Motivation(purpose_a=_fit(urgent), purpose_b=_fit(second), purpose_c=_fit(third))


class RulesBackend:
    """Deterministic fallback backend; same inputs and seed give the same purposes."""

    name = "rules"
    model_id = "rules-v1"

    def generate(self, requests: Sequence[DecisionRequest]) -> list[RawDecision]:
        """One rule-written Motivation per request, as JSON text."""
        out = []
        for request in requests:
            start = time.perf_counter()
            motivation = build_rule_motivation(request.profile, request.situation, request.sampling.seed)
            out.append(RawDecision(text=motivation.model_dump_json(), decode_s=time.perf_counter() - start))
        return out
