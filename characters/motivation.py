"""The model's answer: three distinct candidate next actions, most to least likely."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, model_validator

SCHEMA_VERSION = "1"
PURPOSE_MAX_CHARS = 200
PURPOSE_KEYS = ("purpose_a", "purpose_b", "purpose_c")

_WORDS = re.compile(r"[a-z0-9']+")


def normalize_purpose(text: str) -> str:
    """Lower-case words only; two purposes that normalize equal count as duplicates."""
    return " ".join(_WORDS.findall(text.lower()))


class Motivation(BaseModel):
    """Three candidate next actions for one character, most to least likely."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"title": "Motivation", "x-schema-version": SCHEMA_VERSION},
    )

    purpose_a: str = Field(
        min_length=3,
        max_length=PURPOSE_MAX_CHARS,
        description="The most likely next action, naming the character, and why.",
    )
    purpose_b: str = Field(
        min_length=3,
        max_length=PURPOSE_MAX_CHARS,
        description="A different plausible next action, naming the character, and why.",
    )
    purpose_c: str = Field(
        min_length=3,
        max_length=PURPOSE_MAX_CHARS,
        description="A third, less likely next action, naming the character, and why.",
    )

    @model_validator(mode="after")
    def _sane(self) -> Motivation:
        seen: dict[str, str] = {}
        for key in PURPOSE_KEYS:
            text = getattr(self, key)
            norm = normalize_purpose(text)
            if not norm:
                raise ValueError(f"{key} has no words")
            if norm in seen:
                raise ValueError(f"{key} duplicates {seen[norm]}")
            seen[norm] = key
        return self

    def purposes(self) -> tuple[str, str, str]:
        """The three purposes in order a, b, c."""
        return (self.purpose_a, self.purpose_b, self.purpose_c)
