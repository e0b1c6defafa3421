"""The prompt: one pure function turns a profile and a situation into chat messages.

finetune/ trains on exactly these messages and the engine decodes from them; a test locks that both
import this module, because a format drift between training and inference silently ruins a model.
"""

from __future__ import annotations

from characters import CharacterProfile, Motivation, Situation

PROMPT_VERSION = "1"

SYSTEM_MESSAGE = (
    "Decide what this game character does next. Reply in JSON with purpose_a, purpose_b and "
    "purpose_c: three different actions, most likely first, each one sentence that names the "
    "character and gives the reason."
)

# Truncation rule: each field is cut to its budget at a word boundary, with an ellipsis, so the
# prompt stays under ~450 tokens and always fits a 1024-token context with room for the answer.
FIELD_BUDGET_CHARS = {
    "description": 360,
    "background": 420,
    "context": 480,
    "item": 120,
}
MAX_LIST_ITEMS = {"traits": 6, "goals": 3, "relationships": 4, "nearby": 5, "recent_events": 4}


def truncate_text(text: str, limit: int) -> str:
    """Collapse whitespace and cut ``text`` to ``limit`` characters at a word boundary."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:.") + "…"


def _item(text: str) -> str:
    return truncate_text(text, FIELD_BUDGET_CHARS["item"])


def build_user_message(profile: CharacterProfile, situation: Situation) -> str:
    """The user turn: labelled lines, structured fields only when present."""
    lines = [f"Name: {profile.name}"]
    lines.append(f"Description: {truncate_text(profile.description, FIELD_BUDGET_CHARS['description'])}")
    facts = []
    if profile.age is not None:
        facts.append(f"age {profile.age}")
    if profile.occupation:
        facts.append(_item(profile.occupation))
    if profile.mbti:
        facts.append(profile.mbti)
    if profile.traits:
        facts.append(", ".join(_item(t) for t in profile.traits[: MAX_LIST_ITEMS["traits"]]))
    if facts:
        lines.append(f"Traits: {'; '.join(facts)}")
    if profile.goals:
        lines.append(f"Goals: {'; '.join(_item(g) for g in profile.goals[: MAX_LIST_ITEMS['goals']])}")
    if profile.background:
        lines.append(f"Background: {truncate_text(profile.background, FIELD_BUDGET_CHARS['background'])}")
    if profile.relationships:
        rels = list(profile.relationships.items())[: MAX_LIST_ITEMS["relationships"]]
        lines.append("Knows: " + "; ".join(f"{_item(n)} ({_item(v)})" for n, v in rels))
    where = ", ".join(_item(p) for p in (situation.time, situation.location) if p)
    if where:
        lines.append(f"When/where: {where}")
    lines.append(f"Situation: {truncate_text(situation.context, FIELD_BUDGET_CHARS['context'])}")
    if situation.nearby:
        lines.append(f"Nearby: {'; '.join(_item(n) for n in situation.nearby[: MAX_LIST_ITEMS['nearby']])}")
    if situation.recent_events:
        events = situation.recent_events[: MAX_LIST_ITEMS["recent_events"]]
        lines.append(f"Recent: {'; '.join(_item(e) for e in events)}")
    return "\n".join(lines)


def build_messages(profile: CharacterProfile, situation: Situation) -> list[dict[str, str]]:
    """The chat messages for one decision (system + user), used by training and inference."""
    return [
        {"role": "system", "content": SYSTEM_MESSAGE},
        {"role": "user", "content": build_user_message(profile, situation)},
    ]


def build_assistant_message(motivation: Motivation) -> str:
    """The assistant turn the model is trained to produce: compact JSON in key order a, b, c."""
    return motivation.model_dump_json()


def build_training_messages(
    profile: CharacterProfile, situation: Situation, motivation: Motivation
) -> list[dict[str, str]]:
    """The full conversation for SFT: the inference prompt plus the reference answer."""
    return [
        *build_messages(profile, situation),
        {"role": "assistant", "content": build_assistant_message(motivation)},
    ]
