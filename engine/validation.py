"""The validation chain's checks: parse, JSON Schema, pydantic, sanity."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import jsonschema
from pydantic import ValidationError

from characters import Motivation, motivation_json_schema


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


def parse_motivation(text: str) -> Motivation:
    """Parse raw text into a Motivation, or raise InvalidOutput naming the failed stage."""
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
        return Motivation.model_validate(data)
    except ValidationError as err:
        raise InvalidOutput("sanity", "; ".join(e["msg"] for e in err.errors())) from None
