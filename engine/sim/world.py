"""The world file: places, travel times, the action catalog, residents and the start time."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from characters import Cast, CastError, load_cast

WORLDS_DIR = Path(__file__).resolve().parents[1] / "worlds"
NEEDS = ("energy", "hunger", "social", "fun", "money")
DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class WorldError(ValueError):
    """A world file that cannot load; the message names the file and the field."""


class ActionSpec(BaseModel):
    """A catalog action: how long it takes, what it changes, what words in a purpose point to it."""

    model_config = ConfigDict(extra="forbid")
    name: str
    duration_minutes: int = Field(ge=1, le=24 * 60)
    keywords: list[str] = Field(min_length=1)
    effects: dict[str, float] = Field(default_factory=dict, description="need deltas over the whole action")
    kind: Literal[
        "work", "rest", "eat", "social", "help", "conflict", "leisure", "errand", "emergency", "free"
    ]
    targets: Literal["none", "place", "character"] = "none"
    affinity: float = Field(default=0.0, description="relationship change toward the target when they meet")
    importance: int = Field(default=3, ge=1, le=10, description="how memorable doing it is")

    @model_validator(mode="after")
    def _known_needs(self) -> ActionSpec:
        unknown = set(self.effects) - set(NEEDS)
        if unknown:
            raise ValueError(f"effects on unknown needs: {', '.join(sorted(unknown))}")
        return self


class PlaceSpec(BaseModel):
    """A place characters can be."""

    model_config = ConfigDict(extra="forbid")
    name: str
    kind: str = "place"
    aliases: list[str] = Field(default_factory=list, description="other words that mean this place")
    actions: list[str] = Field(default_factory=list, description="catalog actions usually done here")


class ResidentSpec(BaseModel):
    """Where a cast member lives and works."""

    model_config = ConfigDict(extra="forbid")
    home: str
    work: str


class WorldSpec(BaseModel):
    """A whole world as loaded from YAML."""

    model_config = ConfigDict(extra="forbid")
    name: str
    cast: str = Field(description="cast name in characters/casts or a path relative to the world file")
    start_day: int = Field(default=0, ge=0)
    start_time: str = Field(default="07:00", pattern=r"^\d{2}:\d{2}$")
    default_travel_minutes: int = Field(default=10, ge=0)
    places: list[PlaceSpec] = Field(min_length=1)
    travel_minutes: dict[str, int] = Field(default_factory=dict, description="'A|B': minutes, symmetric")
    actions: list[ActionSpec] = Field(min_length=1)
    residents: dict[str, ResidentSpec]

    @model_validator(mode="after")
    def _consistent(self) -> WorldSpec:
        places = {p.name for p in self.places}
        actions = {a.name for a in self.actions}
        for place in self.places:
            for action in place.actions:
                if action not in actions:
                    raise ValueError(f"place {place.name!r} offers unknown action {action!r}")
        for pair in self.travel_minutes:
            ends = pair.split("|")
            if len(ends) != 2 or not set(ends) <= places:
                raise ValueError(f"travel_minutes key {pair!r} must be 'Place A|Place B' of known places")
        for who, res in self.residents.items():
            for field in ("home", "work"):
                if getattr(res, field) not in places:
                    raise ValueError(f"resident {who!r}: {field} {getattr(res, field)!r} is not a place")
        if "free" not in actions:
            raise ValueError("the catalog needs a 'free' action for purposes nothing else fits")
        return self

    def start_minute(self) -> int:
        """Absolute start time in minutes since day 0, 00:00."""
        hours, minutes = (int(x) for x in self.start_time.split(":"))
        return self.start_day * 1440 + hours * 60 + minutes

    def action(self, name: str) -> ActionSpec:
        """The catalog action called ``name``."""
        for action in self.actions:
            if action.name == name:
                return action
        raise KeyError(name)

    def travel(self, a: str, b: str) -> int:
        """Minutes to walk between two places."""
        if a == b:
            return 0
        return self.travel_minutes.get(
            f"{a}|{b}", self.travel_minutes.get(f"{b}|{a}", self.default_travel_minutes)
        )


def load_world(path: str | Path) -> tuple[WorldSpec, Cast]:
    """Load a world YAML (or a shipped world by name) and its cast; residents must match the cast."""
    candidate = Path(path)
    if not candidate.suffix and not candidate.exists():
        candidate = WORLDS_DIR / f"{path}.yaml"
    try:
        data = yaml.safe_load(candidate.read_text("utf-8"))
    except FileNotFoundError:
        raise WorldError(f"{candidate}: world file not found") from None
    except yaml.YAMLError as err:
        raise WorldError(f"{candidate}: invalid YAML: {err}") from None
    try:
        spec = WorldSpec.model_validate(data)
    except ValidationError as err:
        where = "; ".join(f"field '{'.'.join(str(p) for p in e['loc'])}': {e['msg']}" for e in err.errors())
        raise WorldError(f"{candidate}: {where}") from None
    cast_path = candidate.parent / spec.cast
    try:
        cast = load_cast(cast_path if cast_path.suffix and cast_path.exists() else spec.cast)
    except CastError as err:
        raise WorldError(f"{candidate}: cast: {err}") from None
    names = {c.name for c in cast.characters}
    missing = names - set(spec.residents)
    extra = set(spec.residents) - names
    if missing or extra:
        raise WorldError(
            f"{candidate}: field 'residents': missing {sorted(missing)}; not in cast {sorted(extra)}"
        )
    return spec, cast


def list_worlds() -> list[str]:
    """Names of the shipped worlds."""
    return sorted(p.stem for p in WORLDS_DIR.glob("*.yaml"))


def format_clock(minute: int) -> str:
    """'Mon 07:30 (day 1)' for an absolute minute."""
    day, rest = divmod(minute, 1440)
    return f"{DAY_NAMES[day % 7]} {rest // 60:02d}:{rest % 60:02d}"
