"""JSON Schemas exported from the pydantic models, and checks against them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from characters.motivation import Motivation
from characters.profile import CharacterProfile
from characters.situation import Situation

SCHEMA_DIR = Path(__file__).parent / "schema"
_MODELS: dict[str, type[BaseModel]] = {
    "motivation": Motivation,
    "profile": CharacterProfile,
    "situation": Situation,
}


def build_json_schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schema of each public model, keyed by file stem."""
    return {name: model.model_json_schema(mode="validation") for name, model in _MODELS.items()}


def motivation_json_schema() -> dict[str, Any]:
    """The Motivation JSON Schema, as the grammar and the validators use it."""
    return Motivation.model_json_schema(mode="validation")


def render_schema(schema: dict[str, Any]) -> str:
    """Canonical text of a schema file (sorted keys, trailing newline)."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def save_json_schemas(directory: Path = SCHEMA_DIR) -> list[Path]:
    """Write each schema atomically to ``directory/<name>.schema.json``."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in build_json_schemas().items():
        target = directory / f"{name}.schema.json"
        tmp = target.with_suffix(".json.tmp")
        tmp.write_text(render_schema(schema), encoding="utf-8")
        tmp.replace(target)
        written.append(target)
    return written


def load_json_schema(name: str, directory: Path = SCHEMA_DIR) -> dict[str, Any]:
    """Read a checked-in schema file."""
    result: dict[str, Any] = json.loads((directory / f"{name}.schema.json").read_text("utf-8"))
    return result
