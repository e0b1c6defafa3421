"""The validation chain's checks: parse, JSON Schema, pydantic, sanity."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import jsonschema
from pydantic import ValidationError

from characters import Motivation, motivation_json_schema, naming_problem


class InvalidOutput(ValueError):
    """Raw model text that is not a usable Motivation; ``stage`` says which check failed."""

    def __init__(self, stage: str, detail: str) -> None:
        super().__init__(f"{stage}: {detail}")
        self.stage = stage
        self.detail = detail


@lru_cache(maxsize=1)
def _validator() -> jsonschema.protocols.Validator:
    schema = motivation_json_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def parse_motivation(text: str, name: str | None = None) -> Motivation:
    """Parse raw text into a Motivation, or raise InvalidOutput naming the failed stage.

    With the character's ``name``, a purpose that repeats the name ("Lin Yu ... with Lin Yu") or
    puts more than a short phrase before it fails at the ``naming`` stage, so the engine retries.
    """
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as err:
        raise InvalidOutput("json", f"{err.msg} at char {err.pos}") from None
    errors = sorted(_validator().iter_errors(data), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.path) or "(root)"
        raise InvalidOutput("schema", f"{where}: {first.message}")
    try:
        motivation = Motivation.model_validate(data)
    except ValidationError as err:
        raise InvalidOutput("sanity", "; ".join(e["msg"] for e in err.errors())) from None
    if name:
        for key, purpose in zip(("purpose_a", "purpose_b", "purpose_c"), motivation.purposes(), strict=True):
            problem = naming_problem(purpose, name)
            if problem:
                raise InvalidOutput("naming", f"{key} {problem}")
    return motivation
