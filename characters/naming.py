"""How a purpose names its character: the rules the engine enforces and the data checks share.

A purpose names the character by their exact name, at its start or after a short lead-in phrase
("Heart pounding, Mira Voss runs ..."), and never repeats the name inside the sentence ("Lin Yu
shares the news with Lin Yu" is the bug these rules catch).
"""

from __future__ import annotations

import re

TITLES = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "miss",
        "dr",
        "doctor",
        "sir",
        "dame",
        "lady",
        "lord",
        "queen",
        "king",
        "prince",
        "princess",
        "sister",
        "brother",
        "father",
        "mother",
        "captain",
        "capt",
        "officer",
        "sergeant",
        "sgt",
        "professor",
        "prof",
        "coach",
        "auntie",
        "aunt",
        "uncle",
        "grandma",
        "grandpa",
        "granny",
        "old",
        "young",
        "saint",
        "st",
    ]
)
# Particles inside names ("Brynn of the Vale", "Ibn al-Rashid"): not identifying on their own.
_PARTICLES = frozenset(
    [
        "of",
        "the",
        "de",
        "da",
        "di",
        "del",
        "van",
        "von",
        "der",
        "den",
        "le",
        "la",
        "al",
        "el",
        "ibn",
        "bin",
        "ben",
        "mac",
        "st",
    ]
)
LEAD_IN_MAX_WORDS = 4
LEAD_IN_MAX_CHARS = 45  # 4 words of up to 10 letters, the spaces and ", "
_LEAD_IN = re.compile(rf"^[A-Z][A-Za-z']*(?: [A-Za-z']+){{0,{LEAD_IN_MAX_WORDS - 1}}}, $")


def name_tokens(name: str) -> set[str]:
    """Lower-case tokens of a name that identify the character (titles and particles dropped)."""
    tokens = {w.strip(".'").lower() for w in name.replace("-", " ").split()}
    tokens.discard("")
    keep = {w for w in tokens if w not in TITLES and w not in _PARTICLES}
    return keep or tokens


def name_words(name: str) -> list[str]:
    """The identifying words of a name as written ("Okonkwo" for "Mrs. Okonkwo")."""
    words = [w.strip(".'") for w in name.replace("-", " ").split()]
    keep = [w for w in words if w and w.lower() in name_tokens(name)]
    return keep or [w for w in words if w]


def name_echo(purpose: str, name: str) -> bool:
    """Whether an identifying word of the name appears twice in one purpose.

    Matching is case-sensitive on the name as written, so "Will Turner will ..." or "Grace ... with
    grace" are not echoes, while "Lin Yu ... with Lin Yu" is.
    """
    for word in name_words(name):
        if len(re.findall(rf"(?<![A-Za-z']){re.escape(word)}(?![A-Za-z])", purpose)) >= 2:
            return True
    return False


def lead_in(purpose: str, name: str) -> str | None:
    """The text before the name's first appearance ("" when the purpose starts with it); None if absent."""
    at = purpose.find(name)
    return None if at < 0 else purpose[:at]


def naming_problem(purpose: str, name: str) -> str | None:
    """Why a purpose's naming is wrong (echo, or a lead-in that is not a short phrase), or None.

    A purpose that does not carry the name at all is not judged here: the plain grammar allows it.
    """
    if name_echo(purpose, name):
        return f"repeats the name {name!r}"
    prefix = lead_in(purpose, name)
    if not prefix:
        return None
    if len(prefix) > LEAD_IN_MAX_CHARS or not _LEAD_IN.match(prefix):
        return f"lead-in before the name is not a short phrase: {prefix!r}"
    tokens = name_tokens(name)
    if any(w.lower().strip("'") in tokens for w in prefix[:-2].split()):
        return f"lead-in {prefix!r} repeats part of the name"
    return None
