"""The HTTP API in process (Starlette's TestClient) over a service with the scripted fake backend."""

from __future__ import annotations

import json
import time

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from characters import Motivation
from engine import DecisionService
from engine.serve.app import build_app
from tests.conftest import FakeBackend, motivation_json
from tests.serve.conftest import CASE, case

pytestmark = pytest.mark.timeout(30)


def test_decide_one_case_answers_with_motivation_source_latency_tokens(client, fake):
    response = client.post("/v1/decide", json=case(1))
    assert response.status_code == 200
    body = response.json()
    Motivation.model_validate(body["motivation"])
    assert body["id"] == "case-1" and body["source"] == "model" and body["reason"] is None
    assert (body["prompt_tokens"], body["output_tokens"]) == (100, 40)
    assert body["latency_ms"] > 0 and body["model_id"] == "fake-model"
    assert fake.calls[0][0].sampling.seed == 1


def test_decide_a_list_answers_in_order_and_reads_every_case_shape(client):
    flat = {"id": "flat", "name": "Bo Reyes", "description": "A fisherman.", "context": "A storm comes in."}
    seed = {"Character_name": "Ada", "Character_description": "A smith.", "Context": "The forge is cold."}
    text_situation = {**CASE, "id": "text", "situation": "Rain at dawn."}
    response = client.post("/v1/decide", json=[case(1), flat, seed, text_situation])
    assert response.status_code == 200
    bodies = response.json()
    assert [b["id"] for b in bodies] == ["case-1", "flat", None, "text"]
    assert len({b["ticket"] for b in bodies}) == 4


def test_missed_deadline_is_a_flagged_fallback_in_time(client, fake):
    fake.release.clear()  # the model never answers
    started = time.monotonic()
    response = client.post("/v1/decide", json=case(2, deadline_ms=100))
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    body = response.json()
    assert body["source"] == "fallback" and body["reason"] == "deadline"
    assert "Chloe Martin" in body["motivation"]["purpose_a"]
    assert elapsed < 2.0


@pytest.mark.parametrize("failure", ["invalid", "raises"])
def test_model_failure_is_a_flagged_fallback_not_a_5xx(service, failure):
    outputs: list[str | Exception] = (
        ['{"purpose_a": "Chloe', "not json"] if failure == "invalid" else [RuntimeError("GPU on fire")] * 2
    )
    backend = FakeBackend(outputs)
    with (
        DecisionService(backend, keep_finished=False, cache_size=0) as svc,
        TestClient(build_app(svc)) as client,
    ):
        response = client.post("/v1/decide", json=case(3))
    assert response.status_code == 200
    body = response.json()
    assert body["source"] == "fallback" and body["reason"].startswith("invalid:")
    assert ("GPU on fire" in body["reason"]) == (failure == "raises")


@pytest.mark.parametrize(
    ("body", "path", "kind"),
    [
        ({**CASE, "profile": {"name": "", "description": "x"}}, "profile.name", "string_too_short"),
        ({**CASE, "deadline_ms": 0}, "deadline_ms", "greater_than_equal"),
        ({**CASE, "seed": -1}, "seed", "greater_than_equal"),
        ({**CASE, "situation": {"context": "x", "mood": "odd"}}, "situation.mood", "extra_forbidden"),
        ({**CASE, "colour": "red"}, "(body)", "value_error"),
        ({"profile": CASE["profile"]}, "(body)", "value_error"),
        ([case(0), {**CASE, "priority": "high"}], "[1].priority", "int_type"),
        ({**CASE, "priority": "3"}, "priority", "int_type"),  # JSON's integers only, as the schema says
        (
            {**CASE, "profile": {**CASE["profile"], "relationships": {"": "x"}}},
            'profile.relationships[""][key]',
            "string_too_short",
        ),
        (
            {**CASE, "profile": {**CASE["profile"], "traits": ["ok", " "]}},
            "profile.traits[1]",
            "string_too_short",
        ),
        ({**CASE, "id": True}, "id", "string_type"),
        ([], "(body)", "too_long"),
        ([case(i) for i in range(9)], "(body)", "too_long"),
    ],
)
def test_bad_input_is_422_with_the_field_path(client, fake, body, path, kind):
    for route in ("/v1/decide", "/v1/submit"):
        response = client.post(route, json=body)
        assert response.status_code == 422, response.text
        errors = response.json()["detail"]
        assert any(e["path"] == path and e["type"] == kind for e in errors), errors
    assert fake.calls == []  # nothing half-submitted


def test_invalid_json_is_422(client):
    response = client.post(
        "/v1/decide", content=b'{"profile": ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"


def test_body_over_the_limit_is_413_with_or_without_content_length(client, fake):
    big = {**CASE, "id": "x" * 100, "situation": {"context": "y" * 5000}}
    response = client.post("/v1/decide", json=big)
    assert response.status_code == 413 and "4096-byte limit" in response.json()["detail"]

    def chunks():  # chunked transfer: no Content-Length to trust
        yield b'{"profile": {"name": "A", "description": "'
        for _ in range(10):
            yield b"z" * 500
        yield b'"}, "situation": "s"}'

    response = client.post("/v1/submit", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert fake.calls == []


def hold_worker(client, fake):
    """Block the fake model inside one batch, so further submissions wait in the queue (max 8)."""
    fake.release.clear()
    assert client.post("/v1/submit", json=case(100)).status_code == 202
    deadline = time.monotonic() + 5
    while not fake.calls and time.monotonic() < deadline:
        time.sleep(0.005)
    assert fake.calls


def test_full_queue_is_429_with_retry_after(client, fake, service):
    hold_worker(client, fake)
    accepted = client.post("/v1/submit", json=[case(i) for i in range(1, 9)])
    assert accepted.status_code == 202 and len(accepted.json()) == 8
    refused = client.post("/v1/submit", json=case(9))
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert "full" in refused.json()["detail"] or "room" in refused.json()["detail"]
    assert client.post("/v1/decide", json=case(10)).status_code == 429
    assert service.pending() == 8  # a refused request queues nothing


def test_a_list_that_does_not_fit_queues_nothing(client, fake, service):
    hold_worker(client, fake)
    assert client.post("/v1/submit", json=[case(i) for i in range(6)]).status_code == 202
    refused = client.post("/v1/submit", json=[case(i) for i in range(10, 13)])
    assert refused.status_code == 429
    assert service.pending() == 6
    assert client.post("/v1/submit", json=[case(i) for i in range(10, 12)]).status_code == 202


def test_submit_get_delete_a_ticket(client, fake):
    fake.release.clear()
    submitted = client.post("/v1/submit", json=case(4))
    assert submitted.status_code == 202
    ticket = submitted.json()["ticket"]
    assert submitted.json()["status"] == "pending"
    assert client.get(f"/v1/tickets/{ticket}").json()["status"] == "pending"

    waiting = client.post("/v1/submit", json=case(5)).json()["ticket"]
    cancelled = client.delete(f"/v1/tickets/{waiting}")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert client.get(f"/v1/tickets/{waiting}").status_code == 404  # a cancelled ticket is gone
    assert client.delete(f"/v1/tickets/{waiting}").status_code == 404

    fake.release.set()
    deadline = time.monotonic() + 5
    while client.get(f"/v1/tickets/{ticket}").json()["status"] == "pending" and time.monotonic() < deadline:
        time.sleep(0.01)
    done = client.get(f"/v1/tickets/{ticket}").json()
    assert done["status"] == "done" and done["result"]["source"] == "model" and done["id"] == "case-4"
    refused = client.delete(f"/v1/tickets/{ticket}")
    assert refused.status_code == 409
    assert client.get(f"/v1/tickets/{ticket}").json()["status"] == "done"  # still there
    assert client.get("/v1/tickets/999999").status_code == 404
    assert client.delete("/v1/tickets/999999").status_code == 404
    assert client.get("/v1/tickets/abc").status_code == 422


def test_stream_pushes_every_finished_ticket(client, fake):
    fake.release.clear()
    with client.websocket_connect("/v1/stream") as ws:
        ids = [t["ticket"] for t in client.post("/v1/submit", json=[case(i) for i in range(3)]).json()]
        cancel_me = client.post("/v1/submit", json=case(7)).json()["ticket"]
        client.delete(f"/v1/tickets/{cancel_me}")
        fake.release.set()
        messages = [ws.receive_json() for _ in range(4)]
        ws.send_text(json.dumps({"type": "ping"}))
        assert ws.receive_json() == {"type": "pong"}
    by_ticket = {m["ticket"]: m for m in messages}
    assert set(by_ticket) == {*ids, cancel_me}
    assert by_ticket[cancel_me]["status"] == "cancelled"
    assert all(by_ticket[i]["status"] == "done" and by_ticket[i]["result"]["source"] == "model" for i in ids)


def test_health_stats_schema_and_openapi(client):
    health = client.get("/v1/health").json()
    assert health["status"] == "ok" and health["model_id"] == "fake-model" and health["backend"] == "fake"
    client.post("/v1/decide", json=case(1))
    stats = client.get("/v1/stats").json()
    assert stats["service"]["decisions"] == 1 and stats["service"]["by_source"] == {"model": 1}
    schemas = client.get("/v1/schema").json()
    assert {"motivation", "profile", "situation", "decide_case", "decision", "ticket"} <= set(schemas)
    assert schemas["motivation"]["properties"]["purpose_a"]["maxLength"] == 200
    doc = client.get("/openapi.json").json()
    assert {"/v1/decide", "/v1/submit", "/v1/tickets/{ticket}", "/v1/health"} <= set(doc["paths"])
    assert "DecideCase" in doc["components"]["schemas"] and "Motivation" in doc["components"]["schemas"]
    assert client.get("/docs").status_code == 200


def test_bearer_token_guards_everything_but_health():
    with (
        DecisionService(FakeBackend(), keep_finished=False) as svc,
        TestClient(build_app(svc, token="s3cret")) as client,
    ):
        assert client.get("/v1/health").status_code == 200
        for method, route in [("POST", "/v1/decide"), ("POST", "/v1/submit"), ("GET", "/v1/stats"),
                              ("GET", "/v1/schema"), ("GET", "/v1/tickets/1"), ("DELETE", "/v1/tickets/1")]:  # fmt: skip
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret"}):
                response = client.request(method, route, json=case(1), headers=headers)
                assert response.status_code == 401, (route, headers)
                assert response.headers["www-authenticate"] == "Bearer"
        good = {"Authorization": "Bearer s3cret"}
        assert client.post("/v1/decide", json=case(1), headers=good).status_code == 200
        with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect("/v1/stream") as ws:
            ws.receive_text()
        assert refused.value.code == 1008
        with client.websocket_connect("/v1/stream?token=s3cret") as ws:
            ws.send_text('{"type": "ping"}')
            assert ws.receive_json() == {"type": "pong"}
        with client.websocket_connect("/v1/stream", headers=good) as ws:
            ws.send_text('{"type": "ping"}')
            assert ws.receive_json() == {"type": "pong"}


def test_cached_answers_come_back_at_once(fake):
    with (
        DecisionService(fake, keep_finished=False) as svc,
        TestClient(build_app(svc)) as client,
    ):
        first = client.post("/v1/decide", json=case(1)).json()
        fake.outputs.append(motivation_json("Other"))
        again = client.post("/v1/submit", json=case(1)).json()
    assert again["status"] == "done" and again["result"]["source"] == "cache"
    assert again["result"]["motivation"] == first["motivation"]
