"""Preference pairs for DPO: the reference answer is chosen; a degraded answer is rejected.

Degradations are the failure modes the untuned base shows: duplicated purposes, generic lines that
ignore the situation, purposes from someone else's situation, and the wrong name.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from typing import Any

from engine.prompt import build_messages
from finetune.data.generator import Example

DEGRADATIONS = ("duplicated", "generic", "ungrounded", "wrong_name")

_GENERIC = [
    "{name} goes about the day as usual.",
    "{name} does something.",
    "{name} thinks about things.",
    "{name} waits.",
    "{name} is a person.",
    "{name} decides what to do next.",
]


def _dump(purposes: Sequence[str]) -> str:
    return json.dumps(
        {"purpose_a": purposes[0], "purpose_b": purposes[1], "purpose_c": purposes[2]},
        ensure_ascii=False,
        separators=(",", ":"),
    )


def degrade(example: Example, kind: str, pool: Sequence[Example], rng: random.Random) -> str:
    """A rejected answer for ``example`` of the given kind, as JSON text."""
    name = example.profile.name
    good = list(example.motivation.purposes())
    if kind == "duplicated":
        return _dump([good[0], good[0], rng.choice([good[0], good[1]])])
    if kind == "generic":
        lines = rng.sample(_GENERIC, 3)
        return _dump([line.format(name=name) for line in lines])
    others = [e for e in pool if e.profile.name != name] or list(pool)
    other = rng.choice(others)
    if kind == "ungrounded":
        return _dump([p.replace(other.profile.name, name) for p in other.motivation.purposes()])
    if kind == "wrong_name":
        return _dump([p.replace(name, other.profile.name) for p in good])
    raise ValueError(f"unknown degradation {kind!r}; choose from {', '.join(DEGRADATIONS)}")


def _shuffled(examples: Sequence[Example], seed: int) -> tuple[list[Example], random.Random]:
    rng = random.Random(seed)
    pool = list(examples)
    rng.shuffle(pool)
    return pool, rng


def draw_chosen(examples: Sequence[Example], n: int, seed: int = 0) -> list[Example]:
    """The ``n`` examples whose references ``build_preference_pairs`` makes chosen sides."""
    return _shuffled(examples, seed)[0][:n]


def build_preference_pairs(
    examples: Sequence[Example],
    n: int,
    seed: int = 0,
    base_outputs: dict[str, str] | None = None,
    model_kind: str = "base_model",
) -> list[dict[str, Any]]:
    """``n`` conversational DPO records {prompt, chosen, rejected}.

    Where ``base_outputs`` holds a model's own (weak) answer for an example, that answer is the
    rejected side, labelled ``model_kind``; the rest get a degradation.
    """
    chosen_pool, rng = _shuffled(examples, seed)  # rng goes on to pick the degradations
    pairs = []
    for i, example in enumerate(chosen_pool[:n]):
        chosen = example.motivation.model_dump_json()
        if base_outputs and example.id in base_outputs and base_outputs[example.id] != chosen:
            rejected, kind = base_outputs[example.id], model_kind
        else:
            kind = DEGRADATIONS[i % len(DEGRADATIONS)]
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
