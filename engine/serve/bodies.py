"""Request and response bodies of the HTTP API: the engine's own pydantic models, wrapped.

Only pydantic here (no FastAPI), so the Python client can share these models with the server.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    TypeAdapter,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

from characters import CaseError, CharacterProfile, Motivation, Situation, nest_case_record
from characters.fields import JsonInteger
from characters.situation import Context
from engine.stats import ServiceStats
from engine.ticket import DecisionResult, Source

MAX_SEED = 2**63 - 1
MAX_ID_CHARS = 120
_ID_RANGE = (-(2**63), 2**63 - 1)  # an integer id, as its digits, is well inside MAX_ID_CHARS
_HTTP_KEYS = ("id", "deadline_ms", "priority", "seed")


def _id_text(value: Any) -> Any:
    whole = isinstance(value, float) and value.is_integer()
    if not (whole or (isinstance(value, int) and not isinstance(value, bool))):
        return value  # a string, None, or something the field refuses
    if not _ID_RANGE[0] <= value <= _ID_RANGE[1]:
        raise PydanticCustomError("id_range", "An integer id must fit in 64 bits")
    return str(int(value))


@dataclass(frozen=True)
class _TextOrIntegerId:
    """A caller's id: a string, or an integer (JSON's: 7 or 7.0), kept as its digits ("7")."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_before_validator_function(_id_text, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        integer = {"type": "integer", "minimum": _ID_RANGE[0], "maximum": _ID_RANGE[1]}
        json_schema["anyOf"].insert(1, integer)
        return json_schema


@dataclass(frozen=True)
class _OrContextText:
    """The situation, or its context alone as text (``"situation": "Rain at dawn."``)."""

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        text = {**TypeAdapter(Context).json_schema(), "description": "The context alone, as text."}
        return {"anyOf": [handler(schema), text]}


class DecideCase(BaseModel):
    """One decision to make: a case as ``daydream decide`` reads it, plus deadline, priority and seed.

    The nested shape is documented; the flat shape (``name``, ``description``, ``context`` ...) and the
    seed's sharegpt keys (``Character_name`` ...) are accepted too, as in ``daydream decide``.
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "id": "chloe-1",
                    "profile": {
                        "name": "Chloe Martin",
                        "description": "Barista, 24, friendly, always broke.",
                    },
                    "situation": {"context": "The espresso machine is leaking; the rush starts soon."},
                    "deadline_ms": 2000,
                }
            ]
        },
    )

    id: Annotated[str | None, Field(max_length=MAX_ID_CHARS), _TextOrIntegerId()] = Field(
        default=None, description="Caller's id, echoed back (an integer comes back as its digits)."
    )
    profile: CharacterProfile
    situation: Annotated[Situation, _OrContextText()]
    deadline_ms: Annotated[int, JsonInteger(1, 600_000)] | None = Field(
        default=None,
        description="Answer within this many ms; past it the answer is the flagged rules fallback. "
        "Without one the server's default deadline applies.",
    )
    priority: Annotated[int, JsonInteger(-1000, 1000)] = Field(default=0, description="Higher runs sooner.")
    seed: Annotated[int, JsonInteger(0, MAX_SEED)] | None = Field(
        default=None, description="Sampling seed: same seed, same answer."
    )

    @model_validator(mode="before")
    @classmethod
    def _nest(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        extras = {k: data[k] for k in _HTTP_KEYS if k in data}
        try:
            nested = nest_case_record({k: v for k, v in data.items() if k not in _HTTP_KEYS})
        except CaseError as err:
            raise ValueError(str(err)) from None
        del nested["id"]  # taken out above: the field reads it, integers included
        return {**nested, **extras}


class DecisionOut(BaseModel):
    """A decision: always a schema-valid Motivation, with where it came from and what it cost."""

    id: str | None = Field(default=None, description="The caller's id from the request.")
    ticket: int = Field(description="The server's ticket id for this decision.")
    motivation: Motivation
    source: Source = Field(
        description="model, retry (second attempt), cache, rules (no model chosen), or fallback: "
        "the rules answer given after a missed deadline or a model failure, with the reason."
    )
    reason: str | None = Field(default=None, description="Why a fallback or retry happened.")
    latency_ms: float = Field(description="From submit to answer, inside the server.")
    prompt_tokens: int = 0
    output_tokens: int = 0
    model_id: str = ""
    attempts: int = 1

    @classmethod
    def from_result(cls, ticket_id: int, case_id: str | None, result: DecisionResult) -> DecisionOut:
        """The body for a finished ticket's result."""
        return cls(
            id=case_id,
            ticket=ticket_id,
            motivation=result.motivation,
            source=result.source,
            reason=result.reason,
            latency_ms=round(result.latency_ms, 3),
            prompt_tokens=result.prompt_tokens,
            output_tokens=result.output_tokens,
            model_id=result.model_id,
            attempts=result.attempts,
        )

    def to_result(self) -> DecisionResult:
        """Back to the engine's DecisionResult (the Python client's side)."""
        return DecisionResult(
            motivation=self.motivation,
            source=self.source,
            latency_ms=self.latency_ms,
            prompt_tokens=self.prompt_tokens,
            output_tokens=self.output_tokens,
            model_id=self.model_id,
            reason=self.reason,
            attempts=self.attempts,
        )


TicketStatus = Literal["pending", "done", "cancelled"]


class TicketOut(BaseModel):
    """A submitted decision: pending, done (with its result) or cancelled."""

    type: Literal["ticket"] = "ticket"
    ticket: int
    id: str | None = None
    status: TicketStatus
    result: DecisionOut | None = None


class HealthOut(BaseModel):
    """Whether the server is up, and on which model."""

    status: Literal["ok"] = "ok"
    model_id: str
    backend: str
    queued: int
    uptime_s: float


class StatsOut(BaseModel):
    """The service's statistics (as ``DecisionService.stats()``), the backend's, and the ticket store's."""

    service: ServiceStats
    backend: dict[str, Any] = Field(default_factory=dict)
    tickets: dict[str, int] = Field(default_factory=dict)


class ErrorOut(BaseModel):
    """An error: a message, and for bad input each failing field with its path."""

    detail: str | list[dict[str, Any]]
