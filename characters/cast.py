"""Casts: named groups of characters loaded from YAML or JSON files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from characters.profile import CharacterProfile

CASTS_DIR = Path(__file__).parent / "casts"


class CastError(ValueError):
    """A cast file that cannot load; the message names the file, the character and the field."""


class Cast(BaseModel):
    """A named group of characters who share a world."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=80, description="The cast's name.")
    setting: str = Field(default="", max_length=400, description="Where and when they live.")
    characters: list[CharacterProfile] = Field(min_length=1, description="The characters.")

    def by_name(self, name: str) -> CharacterProfile:
        """The character called ``name``; KeyError if there is none."""
        for profile in self.characters:
            if profile.name == name:
                return profile
        raise KeyError(name)


def _read_document(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CastError(f"{path}: file not found") from None
    except UnicodeDecodeError as err:
        raise CastError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except OSError as err:
        raise CastError(f"{path}: cannot read ({err.strerror})") from None
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except json.JSONDecodeError as err:
        raise CastError(f"{path}: invalid JSON at line {err.lineno} column {err.colno}: {err.msg}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err)
        raise CastError(f"{path}: invalid YAML{where}: {problem}") from None


def _character_label(raw: Any, index: int) -> str:
    if isinstance(raw, dict) and isinstance(raw.get("name"), str) and raw["name"].strip():
        return f"character #{index + 1} ({raw['name'].strip()!r})"
    return f"character #{index + 1}"


def _field_label(loc: tuple[int | str, ...]) -> str:
    """``'traits'[1]``: the field, then the item or key inside it that failed."""
    if not loc:
        return "'(character)'"
    inside = "".join(p if p == "[key]" else f"[{p!r}]" for p in loc[1:])
    return f"'{loc[0]}'{inside}"


def parse_cast(data: Any, source: str = "<cast>") -> Cast:
    """Validate a parsed cast document; all-or-nothing, errors name source, character and field."""
    if not isinstance(data, dict):
        raise CastError(
            f"{source}: expected a mapping with 'name' and 'characters', got {type(data).__name__}"
        )
    raw_chars = data.get("characters")
    if not isinstance(raw_chars, list) or not raw_chars:
        raise CastError(f"{source}: 'characters' must be a non-empty list")
    problems: list[str] = []
    profiles: list[CharacterProfile] = []
    for index, raw in enumerate(raw_chars):
        label = _character_label(raw, index)
        if not isinstance(raw, dict):
            problems.append(f"{label}: expected a mapping, got {type(raw).__name__}")
            continue
        try:
            profiles.append(CharacterProfile.model_validate(raw))
        except ValidationError as err:
            for item in err.errors():
                problems.append(f"{label}: field {_field_label(item['loc'])}: {item['msg']}")
    seen: dict[str, int] = {}
    for index, profile in enumerate(profiles):
        key = profile.name.casefold()
        if key in seen:
            problems.append(f"character {profile.name!r}: field 'name': duplicate name in cast")
        seen[key] = index
    if problems:
        raise CastError(f"{source}: " + "; ".join(problems))
    try:
        return Cast(name=data.get("name", ""), setting=data.get("setting", ""), characters=profiles)
    except ValidationError as err:
        fields = "; ".join(f"field '{'.'.join(str(p) for p in e['loc'])}': {e['msg']}" for e in err.errors())
        raise CastError(f"{source}: {fields}") from None


def load_cast(path: str | Path) -> Cast:
    """Load a cast from a YAML or JSON file, or by bare name from characters/casts/."""
    candidate = Path(path)
    if not candidate.suffix and not candidate.exists():
        candidate = CASTS_DIR / f"{path}.yaml"
    return parse_cast(_read_document(candidate), str(candidate))


def list_casts() -> list[str]:
    """Names of the casts shipped in characters/casts/."""
    return sorted(p.stem for p in CASTS_DIR.glob("*.yaml"))
