"""What is happening to a character right now."""

from __future__ import annotations

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator


class Situation(BaseModel):
    """The current context: free text, plus structured parts a simulation fills in."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, str_strip_whitespace=True)

    context: str = Field(
        min_length=1,
        max_length=1200,
        validation_alias=AliasChoices("context", "Context", "situation"),
        description="What is happening now, in a few sentences.",
    )
    time: str | None = Field(default=None, max_length=60, description="Time and day, e.g. 'Mon 07:30'.")
    location: str | None = Field(default=None, max_length=80, description="Where the character is.")
    nearby: list[str] = Field(
        default_factory=list, max_length=16, description="Characters present, with a short note each."
    )
    recent_events: list[str] = Field(
        default_factory=list, max_length=8, description="Recent events, most relevant first."
    )

    @field_validator("context")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    @field_validator("nearby", "recent_events")
    @classmethod
    def _bounded_items(cls, items: list[str]) -> list[str]:
        cleaned = [item.strip() for item in items]
        for item in cleaned:
            if not item or len(item) > 200:
                raise ValueError("each item must be 1-200 characters")
        return cleaned
