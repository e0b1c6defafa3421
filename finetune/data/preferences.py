"""Preference pairs for DPO: the reference answer is chosen; a degraded answer is rejected.

Degradations are the failure modes the untuned base shows: duplicated purposes, generic lines that
ignore the situation, purposes from someone else's situation, and the wrong name; plus the one the
fine-tuned model still shows: a mangled name (a stray word in front, names glued or cut short).
After DPO on those, the model began to bring in people the prompt never names ("asks Alex for
advice"), so one more kind swaps a purpose for exactly that: an invented person.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from typing import Any

from engine.prompt import build_messages
from finetune.data.generator import Example

DEGRADATIONS = ("duplicated", "generic", "ungrounded", "wrong_name", "mangled_name", "invented_person")
# What the grounded model must unlearn: the old default's stock lines that ignore the moment, a
# name said twice, and a garbled clause in front of the name.
GROUNDED_DEGRADATIONS = ("stock", "ungrounded", "name_echo", "long_lead", "invented_person", "duplicated")

_STOCK = [
    "{name} heads to work and gets on with the work, to keep things running.",
    "{name} resolves to get on with the day's work, since people are counting on {obj}.",
    "{name} goes to find a friend to feel less alone in all this.",
    "{name} decides to think it over carefully before doing anything rash.",
    "{name} waits to see how things develop, because acting blindly could make it worse.",
    "{name} takes the time to rest, as {subj} does every day.",
    "{name} plans to go to the market to keep things running.",
    "{name} shares the news with a friend, since {subj} trusts them more than anyone.",
]
_ECHO_TAILS = [" with {name}", ", as {first} always does", " for {first}'s sake", ", and {first} knows it"]
_LEADS = [
    "Ever and the work goes on and",
    "Heads to the kitchen ands",
    "After the the day at work when",
    "Since now ever",
]

_GENERIC = [
    "{name} goes about the day as usual.",
    "{name} does something.",
    "{name} thinks about things.",
    "{name} waits.",
    "{name} is a person.",
    "{name} decides what to do next.",
]


_STRANGER_LINES = [
    "{name} asks {who} for advice, since {who} always knows what to do.",
    "{name} shares the news with {who}, since {who} would want to hear it first.",
    "{name} goes to find {who}, because {who} is the only one who can help.",
    "{name} sends a message to {who} to ask for a favour, as {who} owes one.",
    "{name} calls {who} for backup because this cannot wait.",
]


def _stranger(example: Example, rng: random.Random) -> str:
    """A first name from the generator's pools that this example's prompt never mentions."""
    from engine.prompt import build_user_message
    from finetune.data.world import FIRST_NAMES

    prompt = build_user_message(example.profile, example.situation).lower()
    pool = sorted({n for genre in FIRST_NAMES.values() for names in genre.values() for n in names})
    return rng.choice([n for n in pool if n.lower() not in prompt])


def _dump(purposes: Sequence[str]) -> str:
    return json.dumps(
        {"purpose_a": purposes[0], "purpose_b": purposes[1], "purpose_c": purposes[2]},
        ensure_ascii=False,
        separators=(",", ":"),
    )


def mangle_name(name: str, other: str, rng: random.Random) -> str:
    """A near miss of ``name``, in the ways a small model gets names wrong; never ``name`` itself."""
    parts, other_parts = name.split(), other.split()
    first = parts[0]
    candidates = [
        f"{other_parts[0]} {name}",  # a stray name in front: "Mayhem Tom Hutchins"
        first[: max(2, len(first) - 2)] + other_parts[-1].lower()[-4:],  # glued: "Mingchene"
        " ".join([first, *other_parts[1:]]) if len(other_parts) > 1 else first + first[-1],
        first[:-1] if len(first) > 3 else first + "a",
    ]
    if len(parts) > 1:
        candidates.append(f"{first} {parts[-1][:-1] or parts[-1] + 's'}")  # surname cut short
    choices = [c for c in candidates if c != name and c not in name.split()]
    return rng.choice(choices) if choices else name + "a"


def degrade(example: Example, kind: str, pool: Sequence[Example], rng: random.Random) -> str:
    """A rejected answer for ``example`` of the given kind, as JSON text."""
    name = example.profile.name
    good = list(example.motivation.purposes())
    if kind == "duplicated":
        return _dump([good[0], good[0], rng.choice([good[0], good[1]])])
    if kind == "stock":
        subj, obj = _pronouns(example)
        lines = rng.sample(_STOCK, 3)
        return _dump([line.format(name=name, subj=subj, obj=obj) for line in lines])
    if kind == "name_echo":
        k = rng.randrange(3)
        tail = rng.choice(_ECHO_TAILS).format(
            name=name, first=name.split()[-1] if len(name.split()) > 1 else name
        )
        good[k] = good[k].rstrip(".!?") + tail + "."
        return _dump(good)
    if kind == "long_lead":
        k = rng.randrange(3)
        good[k] = f"{rng.choice(_LEADS)}, {good[k]}"
        return _dump(good)
    if kind == "generic":
        lines = rng.sample(_GENERIC, 3)
        return _dump([line.format(name=name) for line in lines])
    others = [e for e in pool if e.profile.name != name] or list(pool)
    other = rng.choice(others)
    if kind == "ungrounded":
        return _dump([p.replace(other.profile.name, name) for p in other.motivation.purposes()])
    if kind == "wrong_name":
        return _dump([p.replace(name, other.profile.name) for p in good])
    if kind == "invented_person":
        good[rng.randrange(3)] = rng.choice(_STRANGER_LINES).format(name=name, who=_stranger(example, rng))
        return _dump(good)
    if kind == "mangled_name":
        first = name.split()[0]
        wrong = mangle_name(name, other.profile.name, rng)
        # the full name where it appears, else the first name; one mangled purpose is enough to reject
        k = rng.choice([i for i, p in enumerate(good) if first in p] or [0])
        if first not in good[k]:
            return _dump([f"{wrong}: {good[k]}", *good[1:]])
        good[k] = good[k].replace(name, wrong) if name in good[k] else good[k].replace(first, wrong)
        return _dump(good)
    known = sorted({*DEGRADATIONS, *GROUNDED_DEGRADATIONS})
    raise ValueError(f"unknown degradation {kind!r}; choose from {', '.join(known)}")


def _pronouns(example: Example) -> tuple[str, str]:
    """Subject and object pronouns from the profile's gender or description."""
    gender = (example.profile.gender or example.profile.description.split(",", 1)[0]).strip().lower()
    return {"female": ("she", "her"), "male": ("he", "him")}.get(gender, ("they", "them"))


def grounded_reference(example: Example) -> bool:
    """Whether the reference names only people the prompt mentions.

    Without ``ground_others``, 17% of the generator's references bring in the character's relation by name when the
    prompt left that person out; as DPO's chosen side those taught the model to invent people.
    """
    from engine.prompt import build_user_message
    from finetune.metrics import invented_names

    prompt = build_user_message(example.profile, example.situation)
    return not invented_names(list(example.motivation.purposes()), prompt)


def _shuffled(examples: Sequence[Example], seed: int) -> tuple[list[Example], random.Random]:
    rng = random.Random(seed)
    pool = list(examples)
    rng.shuffle(pool)
    return pool, rng


def draw_chosen(examples: Sequence[Example], n: int, seed: int = 0) -> list[Example]:
    """The ``n`` examples whose references ``build_preference_pairs`` makes chosen sides."""
    return _grounded(_shuffled(examples, seed)[0], n)


def _grounded(pool: Sequence[Example], n: int) -> list[Example]:
    """The first ``n`` examples of ``pool`` whose references are grounded (chosen sides)."""
    out: list[Example] = []
    for example in pool:
        if len(out) == n:
            break
        if grounded_reference(example):  # a chosen side naming a stranger teaches inventing people
            out.append(example)
    return out


def build_preference_pairs(
    examples: Sequence[Example],
    n: int,
    seed: int = 0,
    base_outputs: dict[str, str] | None = None,
    model_kind: str = "base_model",
    kinds: Sequence[str] = DEGRADATIONS,
) -> list[dict[str, Any]]:
    """``n`` conversational DPO records {prompt, chosen, rejected}.

    Where ``base_outputs`` holds a model's own (weak) answer for an example, that answer is the
    rejected side, labelled ``model_kind``; the rest get a degradation.
    """
    chosen_pool, rng = _shuffled(examples, seed)  # rng goes on to pick the degradations
    pairs = []
    for i, example in enumerate(_grounded(chosen_pool, n)):
        chosen = example.motivation.model_dump_json()
        if base_outputs and example.id in base_outputs and base_outputs[example.id] != chosen:
            rejected, kind = base_outputs[example.id], model_kind
        else:
            kind = kinds[i % len(kinds)]
            rejected = degrade(example, kind, chosen_pool, rng)
        if rejected == chosen:
            continue
        pairs.append(
            {
                "id": example.id,
                "kind": kind,
                "prompt": build_messages(example.profile, example.situation),
                "chosen": [{"role": "assistant", "content": chosen}],
                "rejected": [{"role": "assistant", "content": rejected}],
            }
        )
    return pairs
