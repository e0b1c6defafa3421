"""What is happening to a character right now."""

from __future__ import annotations

from typing import Annotated

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from characters.fields import Trimmed

Context = Annotated[str, Trimmed(1, 1200)]
Item = Annotated[str, Trimmed(1, 200)]


class Situation(BaseModel):
    """The current context: free text, plus structured parts a simulation fills in."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, str_strip_whitespace=True)

    context: Context = Field(
        validation_alias=AliasChoices("context", "Context", "situation"),
        description="What is happening now, in a few sentences.",
    )
    time: Annotated[str, Trimmed(0, 60)] | None = Field(
        default=None, description="Time and day, e.g. 'Mon 07:30'."
    )
    location: Annotated[str, Trimmed(0, 80)] | None = Field(
        default=None, description="Where the character is."
    )
    nearby: list[Item] = Field(
        default_factory=list, max_length=16, description="Characters present, with a short note each."
    )
    recent_events: list[Item] = Field(
        default_factory=list, max_length=8, description="Recent events, most relevant first."
    )
