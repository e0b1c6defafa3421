"""``daydream serve`` as a real process, and the setups it refuses."""

from __future__ import annotations

import httpx
import pytest

from engine.serve.cli import is_loopback, run_serve
from tests.serve.conftest import CASE, serve_process

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize(
    ("host", "loopback"), [("127.0.0.1", True), ("::1", True), ("localhost", True), ("0.0.0.0", False),
                           ("192.168.1.4", False), ("example.org", False)],
)  # fmt: skip
def test_loopback_hosts(host, loopback):
    assert is_loopback(host) is loopback


def test_refuses_a_public_address_without_a_token(capsys, monkeypatch):
    assert run_serve(model="rules", host="0.0.0.0", port=0) == 2
    assert "--token-env" in capsys.readouterr().err
    monkeypatch.delenv("NO_SUCH_TOKEN_VAR", raising=False)
    assert run_serve(model="rules", port=0, token_env="NO_SUCH_TOKEN_VAR") == 2
    assert "$NO_SUCH_TOKEN_VAR is not set" in capsys.readouterr().err
    assert run_serve(model="no-such-model", port=0) == 2
    assert "cannot load model" in capsys.readouterr().err


def test_serve_process_on_a_public_address_with_a_token():
    with serve_process("--model", "rules", "--host", "0.0.0.0", "--token-env", "DD_TEST_TOKEN",
                       env={"DD_TEST_TOKEN": "open-sesame"}) as url:  # fmt: skip
        assert httpx.get(f"{url}/v1/health").json()["model_id"] == "rules-v1"
        assert httpx.post(f"{url}/v1/decide", json=CASE).status_code == 401
        good = {"Authorization": "Bearer open-sesame"}
        answer = httpx.post(f"{url}/v1/decide", json=CASE, headers=good, timeout=10)
        assert answer.status_code == 200 and answer.json()["source"] == "rules"
