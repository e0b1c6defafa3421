"""The OpenAPI contract: every status a route answers with its body, the links, and the document.

Schemathesis holds the served document to the server (tests/serve/test_contract.py): what is
written here is what the routes do. The bodies' limits come from the pydantic models themselves.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match

from engine.serve.bodies import DecideCase, ErrorOut

_ERRORS = {
    401: "Missing or wrong bearer token.",
    404: "No such ticket: never submitted, cancelled, or finished more than 10 minutes ago.",
    409: "Already answered: too late to cancel.",
    413: "Body over the size limit.",
    422: "Bad input; each error names its field path.",
    429: "Queue full; retry after the Retry-After header's seconds.",
}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer", "minimum": 1},
    }
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` entries for these error statuses, each with its ErrorOut body."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        out[status] = {"model": ErrorOut, "description": _ERRORS[status]}
        if status == 429:
            out[status]["headers"] = _RETRY_AFTER
    return out


def _link(operation: str, pointer: str, description: str) -> dict[str, Any]:
    return {
        "operationId": operation,
        "parameters": {"ticket": f"$response.body#{pointer}"},
        "description": description,
    }


def submit_links() -> dict[str, Any]:
    """Links from /v1/submit's 202 to the ticket routes: ``/ticket`` for one case, ``/0/ticket`` for a list."""
    links: dict[str, Any] = {}
    for verb, operation in (("Get", "get_ticket"), ("Cancel", "cancel_ticket")):
        links[f"{verb}Ticket"] = _link(operation, "/ticket", "The ticket, when one case was submitted.")
        links[f"{verb}FirstTicket"] = _link(
            operation, "/0/ticket", "The first case's ticket, when a list was submitted."
        )
    return links


def ticket_link(operation: str) -> dict[str, Any]:
    """A link from a ticket's body to another ticket route (``ticket`` is its id; ``id`` the caller's)."""
    verb = "CancelTicket" if operation == "cancel_ticket" else "GetTicket"
    return {verb: _link(operation, "/ticket", "The same ticket.")}


def case_body(max_cases: int) -> dict[str, Any]:
    """The ``openapi_extra=`` for a body of one case or a list of them (the routes read it raw)."""
    case = {"$ref": "#/components/schemas/DecideCase"}
    one = {"title": "One case", **case}
    many = {"title": "A list of cases", "type": "array", "items": case, "minItems": 1, "maxItems": max_cases}
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"anyOf": [one, many]}}},
        }
    }


def method_not_allowed(routes: list[BaseRoute]) -> Any:
    """A 405 handler whose Allow names every method the path takes (Starlette names one route's)."""

    async def handler(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        methods = {
            method
            for route in routes
            if route.matches(request.scope)[0] is Match.PARTIAL
            for method in getattr(route, "methods", None) or ()
        }
        headers = {**(exc.headers or {}), "Allow": ", ".join(sorted(methods))}
        return await http_exception_handler(request, StarletteHTTPException(405, exc.detail, headers))

    return handler


def install_openapi(app: FastAPI) -> None:
    """Serve FastAPI's document with the DecideCase schema, which the routes read raw, added."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
            case = DecideCase.model_json_schema(ref_template="#/components/schemas/{model}")
            components = doc.setdefault("components", {}).setdefault("schemas", {})
            components.update(case.pop("$defs", {}))
            components["DecideCase"] = case
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
