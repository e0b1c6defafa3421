"""Field types the models share: trimmed text, JSON integers, closed keys; each declared once.

The validator and the JSON Schema come from the same declaration, so they cannot drift. The schema
describes what a client sends, before trimming, and a value passes it exactly when it passes
validation:

    name: Annotated[str, Trimmed(1, 80)]   # " Mira " is "Mira"; "   " and 81 characters fail
    age: Annotated[int, JsonInteger(0, 150)] | None
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

# What str.strip() removes (the characters where str.isspace() is true), spelled out so that the
# published pattern means the same in every regex dialect: JavaScript's \s, for one, differs.
SPACE_CHARS = r"\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
SPACE = f"[{SPACE_CHARS}]"
INK = f"[^{SPACE_CHARS}]"


def trimmed_pattern(min_chars: int, max_chars: int) -> str:
    """A regex for strings that are ``min_chars`` to ``max_chars`` characters long once trimmed."""
    if not 0 <= min_chars <= max_chars or max_chars < 1:
        raise ValueError(f"bad bounds {min_chars}..{max_chars}")
    if max_chars == 1:
        core = INK
    elif min_chars <= 1:
        core = f"{INK}(?:[\\s\\S]{{0,{max_chars - 2}}}{INK})?"
    else:
        core = f"{INK}[\\s\\S]{{{min_chars - 2},{max_chars - 2}}}{INK}"
    if min_chars == 0:
        core = f"(?:{core})?"
    return f"^{SPACE}*{core}{SPACE}*$"


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


@dataclass(frozen=True)
class Trimmed:
    """``Annotated[str, Trimmed(1, 80)]``: stripped as by ``str.strip()``, then 1 to 80 characters.

    Errors are pydantic's usual ``string_too_short`` / ``string_too_long``; the JSON Schema states
    the same limits as a pattern over the untrimmed string.
    """

    min_chars: int
    max_chars: int

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        inner = core_schema.str_schema(min_length=self.min_chars or None, max_length=self.max_chars)
        return core_schema.no_info_before_validator_function(_strip, inner)

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema.pop("minLength", None)
        json_schema.pop("maxLength", None)
        json_schema["pattern"] = trimmed_pattern(self.min_chars, self.max_chars)
        return json_schema


def _json_integer(value: Any) -> Any:
    if isinstance(value, bool | str | bytes):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


@dataclass(frozen=True)
class JsonInteger:
    """``Annotated[int, JsonInteger(0, 150)]``: what JSON Schema calls an integer, within bounds.

    2 and 2.0 pass; "2" and true fail, where pydantic's lax mode would coerce them.
    """

    ge: int | None = None
    le: int | None = None

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_before_validator_function(
            _json_integer, core_schema.int_schema(ge=self.ge, le=self.le)
        )


@dataclass(frozen=True)
class ClosedKeys:
    """``Annotated[dict[Key, Value], ClosedKeys()]``: the JSON Schema bounds every key.

    pydantic publishes a key pattern as ``patternProperties``, which leaves the keys that do not
    match it unchecked; this states it as ``propertyNames``, with the value schema for every key.
    """

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        by_pattern = json_schema.pop("patternProperties", None)
        if by_pattern:
            ((pattern, values),) = by_pattern.items()
            json_schema["propertyNames"] = {"pattern": pattern}
            json_schema["additionalProperties"] = values
        return json_schema


@dataclass(frozen=True)
class InputPattern:
    """``Annotated[str, Field(pattern=...), InputPattern(raw)]``: the JSON Schema's pattern is ``raw``.

    For a field whose before-validator normalises the input (case, whitespace) ahead of the
    validated pattern, ``raw`` describes what a client may send; tests check that the two agree.
    """

    pattern: str

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["pattern"] = self.pattern
        return json_schema
