"""Teacher distillation against a fake OpenAI-compatible server on loopback."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from characters import motivation_json_schema, name_echo
from finetune.config import TeacherSettings, load_config
from finetune.data.dataset import build_sharegpt_record, load_jsonl, main, save_dataset
from finetune.data.generator import Example, generate_examples
from finetune.data.teacher import TeacherError, distill


def _teacher_answer(draft: dict[str, str]) -> str:
    """What the fake teacher 'writes': the draft, reworded so it can be told apart."""
    # the draft's own lead-in ("Ever reserved, Name ...") goes: two lead-ins fail the naming check
    return json.dumps(
        {k: f"Thoughtfully, {v.split(', ', 1)[1] if v.startswith('Ever ') else v}" for k, v in draft.items()}
    )


class FakeTeacher:
    """A chat-completions server whose answer per character follows a script."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.scripts: dict[str, list[str]] = {}  # character name -> behaviours, one per request
        self.lock = threading.Lock()
        teacher = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                user = body["messages"][-1]["content"]
                name = user.splitlines()[0].removeprefix("Name: ")
                with teacher.lock:
                    teacher.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                    script = teacher.scripts.get(name, [])
                    behaviour = script.pop(0) if script else "good"
                if behaviour == "status500":
                    self._send(500, b'{"error": "overloaded"}')
                    return
                if behaviour == "status401":
                    self._send(401, b'{"error": "bad key"}')
                    return
                draft = json.loads(user.split("Draft answer:\n", 1)[1])
                content = {
                    "good": _teacher_answer(draft),
                    "fenced": "```json\n" + _teacher_answer(draft) + "\n```",
                    "badjson": '{"purpose_a": "unterminated',
                    "duplicate": json.dumps(dict.fromkeys(draft, draft["purpose_a"])),
                    "noname": json.dumps({k: f"Someone will handle option {k}" for k in draft}),
                }[behaviour]
                reply = {"choices": [{"message": {"role": "assistant", "content": content}}]}
                self._send(200, json.dumps(reply).encode())

            def _send(self, code: int, payload: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def teacher() -> Iterator[FakeTeacher]:
    server = FakeTeacher()
    yield server
    server.close()


@pytest.fixture(scope="module")
def examples() -> list[Example]:
    return generate_examples(6, seed=3)


def test_distill_keeps_only_answers_that_pass_every_check(
    teacher: FakeTeacher, examples: list[Example], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAYDREAM_TEST_KEY", "sk-test")
    names = [ex.profile.name for ex in examples]
    assert len(set(names)) == len(names)
    scripts = [
        ["badjson", "good"],
        ["duplicate", "duplicate"],
        ["noname", "noname"],
        ["status500", "good"],
        ["fenced"],
    ]
    teacher.scripts = dict(zip(names, scripts, strict=False))
    settings = TeacherSettings(
        url=teacher.url, model="big-teacher", api_key_env="DAYDREAM_TEST_KEY", workers=3
    )

    results, report = distill(examples, settings, cache_path=tmp_path / "cache.jsonl")

    assert [r.id for r in results] == [ex.id for ex in examples]
    taught = [r.motivation.purpose_a.startswith("Thoughtfully, ") for r in results]
    assert taught == [True, False, False, True, True, True]
    for result, example in zip(results[1:3], examples[1:3], strict=True):
        assert result.motivation == example.motivation  # a rejected answer keeps the reference
    assert results[0].meta["reference"] == "teacher:big-teacher:rewrite"
    assert report.accepted == 4 and report.kept_reference == 2 and report.cached == 0
    assert report.rejections == {"json": 1, "sanity": 2, "grounding": 2, "http": 1}
    assert len(teacher.requests) == 2 + 2 + 2 + 2 + 1 + 1

    first = teacher.requests[0]
    assert first["path"] == "/v1/chat/completions"
    assert first["headers"]["Authorization"] == "Bearer sk-test"
    body = first["body"]
    assert body["model"] == "big-teacher"
    assert body["response_format"]["json_schema"]["schema"] == motivation_json_schema()
    assert body["messages"][0]["role"] == "system" and "Draft answer:" in body["messages"][1]["content"]


def test_cached_answers_are_not_asked_again(
    teacher: FakeTeacher, examples: list[Example], tmp_path: Path
) -> None:
    settings = TeacherSettings(url=teacher.url + "/v1", workers=2)
    cache = tmp_path / "cache.jsonl"
    teacher.scripts = {examples[0].profile.name: ["duplicate", "duplicate"]}
    first, _ = distill(examples, settings, cache_path=cache)
    asked = len(teacher.requests)

    second, report = distill(examples, settings, cache_path=cache)

    assert report.cached == 5  # everything but the rejected one
    assert len(teacher.requests) == asked + 1  # only the rejected example is asked again
    assert [r.motivation for r in second[1:]] == [r.motivation for r in first[1:]]


def test_unreachable_or_refusing_teacher_fails_loudly(teacher: FakeTeacher, examples: list[Example]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{closed_port}"
    with pytest.raises(TeacherError, match=f"127.0.0.1:{closed_port}.*unreachable"):
        distill(examples, TeacherSettings(url=url, timeout_s=5))

    teacher.scripts = {ex.profile.name: ["status401"] for ex in examples}
    with pytest.raises(TeacherError, match="HTTP 401"):
        distill(examples, TeacherSettings(url=teacher.url, workers=1))


def test_dataset_cli_distills_and_imports(teacher: FakeTeacher, tmp_path: Path) -> None:
    outside = generate_examples(4, seed=99)
    sharegpt = tmp_path / "outside.sharegpt.json"
    sharegpt.write_text(json.dumps([build_sharegpt_record(ex) for ex in outside]), "utf-8")
    plain = save_dataset(generate_examples(30, seed=5), tmp_path / "plain")

    out = tmp_path / "taught"
    code = main(
        [
            "--n",
            "30",
            "--seed",
            "5",
            "--out",
            str(out),
            "--teacher",
            teacher.url,
            "--import",
            str(sharegpt),
            "--generator",
            "procedural",
            "--no-corpus",
        ]
    )

    assert code == 0
    train = load_jsonl(out / "train.jsonl")
    assert len(train) == plain["train"] + len(outside)
    answers = [json.loads(r["messages"][-1]["content"])["purpose_a"] for r in train]
    # every answer is taken but those echoing the name, which the v1 generator writes for
    # nonbinary characters ("Ash ... as Ash does every day") and the naming check rejects
    echoes = sum(
        any(name_echo(p, r["profile"]["name"]) for p in json.loads(r["messages"][-1]["content"]).values())
        for r in load_jsonl(tmp_path / "plain" / "train.jsonl")
    )
    assert sum(a.startswith("Thoughtfully, ") for a in answers) == plain["train"] - echoes
    assert (out / "teacher_cache.jsonl").exists()
    assert main(["--n", "10", "--out", str(tmp_path / "x"), "--teacher", "http://127.0.0.1:9/v1"]) == 2


def test_daydream_cli_passes_every_flag_to_the_data_command(teacher: FakeTeacher, tmp_path: Path) -> None:
    from daydream.cli import main as daydream_main

    out = tmp_path / "cli"
    assert (
        daydream_main(
            ["finetune", "data", "--n", "12", "--seed", "2", "--out", str(out), "--teacher", teacher.url]
        )
        == 0
    )
    assert teacher.requests and (out / "train.jsonl").exists()


def test_teacher_settings_from_config_overrides(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("data:\n  n: 100\n  teacher: null\n", "utf-8")
    cfg = load_config(path, ["data.teacher.url=http://127.0.0.1:8080", "data.teacher.mode=write"])
    assert cfg.data.teacher is not None
    assert (cfg.data.teacher.url, cfg.data.teacher.mode, cfg.data.teacher.workers) == (
        "http://127.0.0.1:8080",
        "write",
        4,
    )


def test_write_mode_asks_without_a_draft(examples: list[Example]) -> None:
    from finetune.data.teacher import build_endpoint, build_teacher_messages

    messages = build_teacher_messages(examples[0], "write")
    assert "Draft answer" not in messages[1]["content"]
    assert messages[1]["content"].startswith(f"Name: {examples[0].profile.name}")
    assert build_endpoint("https://api.example.com/v1/") == "https://api.example.com/v1/chat/completions"
    assert build_endpoint("http://h:8080/v1/chat/completions") == "http://h:8080/v1/chat/completions"
