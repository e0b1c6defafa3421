"""One decision input: a profile plus a situation, read from any of the accepted record shapes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from characters.profile import CharacterProfile
from characters.situation import Situation

SEED_KEYS = ("Character_name", "Character_description", "Context", "Background")
_PROFILE_KEYS = set(CharacterProfile.model_fields) | {"Character_name", "Character_description", "Background"}
_SITUATION_KEYS = set(Situation.model_fields) | {"Context", "situation"}


class CaseError(ValueError):
    """A record that cannot become a Case; the message names the offending field."""


class Case(BaseModel):
    """A profile and a situation, with an optional caller id."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, max_length=120, description="Caller's id, echoed back.")
    profile: CharacterProfile
    situation: Situation


def _format_error(err: ValidationError, prefix: str) -> str:
    parts = []
    for item in err.errors():
        loc = ".".join(str(p) for p in item["loc"])
        where = f"{prefix}.{loc}" if prefix and loc else prefix or loc
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def nest_case_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """Any accepted record shape as ``{"id", "profile": {...}, "situation": {...}}``, unvalidated.

    Accepted shapes:
    - ``{"id", "profile": {...}, "situation": {...} | "text"}``
    - flat: ``{"id", "name", "description", "background", "situation" | "context", ...}``
    - seed: ``{"Character_name", "Character_description", "Context", "Background"}``
    """
    if not isinstance(record, Mapping):
        raise CaseError(f"expected an object, got {type(record).__name__}")
    case_id = record.get("id")
    if case_id is not None and not isinstance(case_id, str):
        case_id = str(case_id)
    if "profile" in record:
        unknown = set(record) - {"id", "profile", "situation"}
        if unknown:
            raise CaseError(f"unknown keys: {', '.join(sorted(unknown))}")
        profile_data = record["profile"]
        situation_data = record.get("situation")
    else:
        unknown = set(record) - _PROFILE_KEYS - _SITUATION_KEYS - {"id"}
        if unknown:
            raise CaseError(f"unknown keys: {', '.join(sorted(unknown))}")
        profile_data = {k: v for k, v in record.items() if k in _PROFILE_KEYS}
        situation_data = {k: v for k, v in record.items() if k in _SITUATION_KEYS}
    if situation_data is None or situation_data == {}:
        raise CaseError("situation: missing (give 'situation', 'context' or 'Context')")
    if isinstance(situation_data, str):
        situation_data = {"context": situation_data}
    if isinstance(situation_data, Mapping) and isinstance(situation_data.get("situation"), Mapping):
        situation_data = situation_data["situation"]
    return {"id": case_id, "profile": profile_data, "situation": situation_data}


def load_case(record: Mapping[str, Any]) -> Case:
    """Build a Case from a nested record, a flat record of our keys, or the seed's sharegpt keys."""
    nested = nest_case_record(record)
    try:
        profile = CharacterProfile.model_validate(nested["profile"])
    except ValidationError as err:
        raise CaseError(_format_error(err, "profile")) from None
    try:
        situation = Situation.model_validate(nested["situation"])
    except ValidationError as err:
        raise CaseError(_format_error(err, "situation")) from None
    try:
        return Case(id=nested["id"], profile=profile, situation=situation)
    except ValidationError as err:  # the id: too long
        raise CaseError(_format_error(err, "")) from None


def build_seed_record(profile: CharacterProfile, situation: Situation) -> dict[str, str]:
    """The seed's sharegpt user-turn keys for a profile and situation."""
    return {
        "Character_name": profile.name,
        "Character_description": profile.description,
        "Context": situation.context,
        "Background": profile.background,
    }
