"""The backend contract: a batch of requests in, one raw text per request out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from engine.request import DecisionRequest, RawDecision


@runtime_checkable
class Backend(Protocol):
    """Anything that turns decision requests into raw model text."""

    name: str
    model_id: str

    def generate(self, requests: Sequence[DecisionRequest]) -> list[RawDecision]:
        """One RawDecision per request, in order. Never raises for a single bad request."""
        ...
