"""Who a character is: the profile a game hands to the engine."""

from __future__ import annotations

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

MBTI_PATTERN = r"^[EI][NS][TF][JP]$"


def _strip_text(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


class CharacterProfile(BaseModel):
    """A character's identity: free text the model reads, plus structured facts a game may know."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, str_strip_whitespace=True)

    name: str = Field(
        min_length=1,
        max_length=80,
        validation_alias=AliasChoices("name", "Character_name"),
        description="The character's name as other characters say it.",
    )
    description: str = Field(
        min_length=1,
        max_length=600,
        validation_alias=AliasChoices("description", "Character_description"),
        description="Who they are: age, occupation, temperament, habits.",
    )
    background: str = Field(
        default="",
        max_length=1500,
        validation_alias=AliasChoices("background", "Background"),
        description="History and standing concerns that colour every decision.",
    )
    age: int | None = Field(default=None, ge=0, le=150, description="Age in years.")
    gender: str | None = Field(default=None, max_length=40, description="Gender, as the game names it.")
    occupation: str | None = Field(default=None, max_length=80, description="Main occupation.")
    mbti: str | None = Field(
        default=None, pattern=MBTI_PATTERN, description="Myers-Briggs type such as INTJ."
    )
    traits: list[str] = Field(default_factory=list, max_length=12, description="Short personality traits.")
    goals: list[str] = Field(default_factory=list, max_length=8, description="Long-term goals.")
    relationships: dict[str, str] = Field(
        default_factory=dict,
        description="Other characters by name, each with how this character sees them.",
    )

    @field_validator("name", "description")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    @field_validator("mbti", mode="before")
    @classmethod
    def _upper_mbti(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("traits", "goals")
    @classmethod
    def _bounded_items(cls, items: list[str]) -> list[str]:
        cleaned = [str(_strip_text(item)) for item in items]
        for item in cleaned:
            if not item or len(item) > 120:
                raise ValueError("each item must be 1-120 characters")
        return cleaned

    @field_validator("relationships")
    @classmethod
    def _bounded_relationships(cls, rels: dict[str, str]) -> dict[str, str]:
        if len(rels) > 32:
            raise ValueError("at most 32 relationships")
        for other, note in rels.items():
            if not other.strip() or len(other) > 80 or len(note) > 200:
                raise ValueError(f"relationship {other!r}: name 1-80 chars, note at most 200")
        return rels
