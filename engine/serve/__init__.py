"""``daydream serve``: the HTTP and WebSocket API over a DecisionService, and its Python client.

Needs the serve extra (``pip install 'daydream[serve]'``: FastAPI, uvicorn, httpx, websockets).
Names load on first use, so importing the engine never needs FastAPI.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.serve.app import build_app
    from engine.serve.bodies import DecideCase, DecisionOut, TicketOut
    from engine.serve.cli import run_serve
    from engine.serve.client import RemoteDecisionService, RemoteError

_WHERE = {
    "build_app": "engine.serve.app",
    "DecideCase": "engine.serve.bodies",
    "DecisionOut": "engine.serve.bodies",
    "TicketOut": "engine.serve.bodies",
    "run_serve": "engine.serve.cli",
    "RemoteDecisionService": "engine.serve.client",
    "RemoteError": "engine.serve.client",
}

__all__ = [
    "DecideCase",
    "DecisionOut",
    "RemoteDecisionService",
    "RemoteError",
    "TicketOut",
    "build_app",
    "run_serve",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'engine.serve' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
