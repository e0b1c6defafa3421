"""The OpenAPI document: security only with a token, every status each route answers, the links,
and /docs and /redoc served offline from the app itself."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from engine import DecisionService
from engine.serve.app import build_app
from tests.conftest import FakeBackend

pytestmark = pytest.mark.timeout(30)

# What each route can answer besides a token's 401.
STATUSES = {
    ("post", "/v1/decide"): {"200", "413", "422", "429"},
    ("post", "/v1/submit"): {"202", "413", "422", "429"},
    ("get", "/v1/tickets/{ticket}"): {"200", "404", "422"},
    ("delete", "/v1/tickets/{ticket}"): {"200", "404", "409", "422"},
    ("get", "/v1/health"): {"200"},
    ("get", "/v1/stats"): {"200"},
    ("get", "/v1/schema"): {"200"},
}


def openapi_doc(token: str | None) -> dict:
    with (
        DecisionService(FakeBackend(), keep_finished=False) as svc,
        TestClient(build_app(svc, token=token)) as client,
    ):
        doc: dict = client.get("/openapi.json").json()
    return doc


def operations(doc: dict) -> dict[tuple[str, str], dict]:
    return {(method, path): op for path, item in doc["paths"].items() for method, op in item.items()}


@pytest.mark.parametrize("token", [None, "s3cret"])
def test_every_route_documents_each_status_it_answers_with_a_body(token):
    ops = operations(openapi_doc(token))
    assert set(ops) == set(STATUSES)
    for key, op in ops.items():
        guarded = token is not None and key != ("get", "/v1/health")
        assert set(op["responses"]) == STATUSES[key] | ({"401"} if guarded else set()), key
        for status, response in op["responses"].items():
            assert response["description"], (key, status)
            assert "application/json" in response["content"], (key, status)
    assert "Retry-After" in ops[("post", "/v1/submit")]["responses"]["429"]["headers"]


def test_the_bearer_scheme_is_declared_only_when_a_token_is_configured():
    open_doc = openapi_doc(None)
    assert "securitySchemes" not in open_doc.get("components", {})
    assert all("security" not in op for op in operations(open_doc).values())
    guarded = openapi_doc("s3cret")
    assert guarded["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    for key, op in operations(guarded).items():
        assert ("security" in op) == (key != ("get", "/v1/health")), key


def test_links_lead_from_submit_and_between_the_ticket_routes():
    ops = operations(openapi_doc(None))
    ids = {op["operationId"] for op in ops.values()}
    submit = ops[("post", "/v1/submit")]["responses"]["202"]["links"]
    assert {link["parameters"]["ticket"] for link in submit.values()} == {
        "$response.body#/ticket",  # one case
        "$response.body#/0/ticket",  # a list
    }
    assert {link["operationId"] for link in submit.values()} == {"get_ticket", "cancel_ticket"}
    got = ops[("get", "/v1/tickets/{ticket}")]["responses"]["200"]["links"]
    cancelled = ops[("delete", "/v1/tickets/{ticket}")]["responses"]["200"]["links"]
    for link in [*submit.values(), *got.values(), *cancelled.values()]:
        assert link["operationId"] in ids
        assert list(link["parameters"]) == ["ticket"]  # the body's `ticket`, never the caller's `id`


def test_a_wrong_method_names_every_allowed_one():
    with (
        DecisionService(FakeBackend(), keep_finished=False) as svc,
        TestClient(build_app(svc)) as client,
    ):
        response = client.request("OPTIONS", "/v1/tickets/1")
        assert response.status_code == 405 and response.headers["allow"] == "DELETE, GET"
        response = client.put("/v1/decide")
        assert response.status_code == 405 and response.headers["allow"] == "POST"


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_load_every_asset_from_the_app_itself(client, page):
    response = client.get(page)
    assert response.status_code == 200
    html = response.text
    assert not re.search(r"https?://", html), "the page names an outside address"
    refs = re.findall(r'(?:src|href|spec-url)="([^"]+)"', html) + re.findall(r"\burl: '([^']+)'", html)
    assert "/openapi.json" in refs and any(ref.endswith(".js") for ref in refs), refs
    for ref in refs:
        asset = client.get(ref)
        assert asset.status_code == 200 and len(asset.content) > 0, ref
        if ref.endswith(".js"):
            assert len(asset.content) > 100_000, f"{ref} is not the real bundle"
    if page == "/docs":
        assert '"validatorUrl": null' in html  # the validator badge would call validator.swagger.io
        assert "/docs/oauth2-redirect" in html
        redirect = client.get("/docs/oauth2-redirect")
        assert redirect.status_code == 200 and not re.search(r"https?://", redirect.text)
