"""Who a character is: the profile a game hands to the engine."""

from __future__ import annotations

from typing import Annotated

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

from characters.fields import SPACE, ClosedKeys, InputPattern, JsonInteger, Trimmed

MBTI_PATTERN = r"^[EI][NS][TF][JP]$"
# MBTI_PATTERN before _upper_mbti: trimmed, any case, and the letters whose str.upper() is one of
# its letters (dotless i, long s, and the ligatures for "ST").
MBTI_INPUT_PATTERN = f"^{SPACE}*[EIei\\u0131](?:[NSns\\u017f][FTft]|[\\ufb05\\ufb06])[JPjp]{SPACE}*$"

Trait = Annotated[str, Trimmed(1, 120)]
OtherName = Annotated[str, Trimmed(1, 80)]
Note = Annotated[str, Trimmed(0, 200)]


class CharacterProfile(BaseModel):
    """A character's identity: free text the model reads, plus structured facts a game may know."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, str_strip_whitespace=True)

    name: Annotated[str, Trimmed(1, 80)] = Field(
        validation_alias=AliasChoices("name", "Character_name"),
        description="The character's name as other characters say it.",
    )
    description: Annotated[str, Trimmed(1, 600)] = Field(
        validation_alias=AliasChoices("description", "Character_description"),
        description="Who they are: age, occupation, temperament, habits.",
    )
    background: Annotated[str, Trimmed(0, 1500)] = Field(
        default="",
        validation_alias=AliasChoices("background", "Background"),
        description="History and standing concerns that colour every decision.",
    )
    age: Annotated[int, JsonInteger(0, 150)] | None = Field(default=None, description="Age in years.")
    gender: Annotated[str, Trimmed(0, 40)] | None = Field(
        default=None, description="Gender, as the game names it."
    )
    occupation: Annotated[str, Trimmed(0, 80)] | None = Field(default=None, description="Main occupation.")
    mbti: Annotated[str, Field(pattern=MBTI_PATTERN), InputPattern(MBTI_INPUT_PATTERN)] | None = Field(
        default=None, description="Myers-Briggs type such as INTJ."
    )
    traits: list[Trait] = Field(default_factory=list, max_length=12, description="Short personality traits.")
    goals: list[Trait] = Field(default_factory=list, max_length=8, description="Long-term goals.")
    relationships: Annotated[dict[OtherName, Note], ClosedKeys()] = Field(
        default_factory=dict,
        max_length=32,
        description="Other characters by name, each with how this character sees them.",
    )

    @field_validator("mbti", mode="before")
    @classmethod
    def _upper_mbti(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value
