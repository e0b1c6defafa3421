"""Optional teacher distillation: an OpenAI-compatible chat endpoint writes or rewrites references.

    python -m finetune.data.dataset --n 3000 --seed 1 --out data/teach \
        --teacher http://127.0.0.1:8080 --teacher-model qwen2.5-7b --teacher-mode rewrite

Any server that speaks ``POST /v1/chat/completions`` works: a llama.cpp server, vLLM, or a hosted
API (the key comes from an environment variable, never from the command line). Each answer goes
through the same checks as the engine's output (JSON, JSON Schema, pydantic) plus the generator's
own bar: every purpose names the character. An answer that fails keeps the generator's reference,
so a weak or flaky teacher never makes the dataset worse and nothing is lost. Answers are cached
on disk by example id, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from characters import Motivation, motivation_json_schema
from engine.prompt import build_user_message
from engine.validation import InvalidOutput, parse_motivation
from finetune.config import TeacherSettings
from finetune.data.generator import Example
from finetune.metrics import names_character

TeacherMode = Literal["write", "rewrite"]

_INSTRUCTIONS = {
    "write": (
        "You write training data for a game's character AI. Given a character and their situation, "
        "answer with a JSON object with keys purpose_a, purpose_b and purpose_c: three different "
        "next actions, most to least likely, each naming the character by name and saying why, "
        "each grounded in the character's background and what is happening now. Make them different "
        "kinds of response (for example duty, comfort, caution or people), not three versions of one "
        "idea. At most 200 characters each. Answer with the JSON object only."
    ),
    "rewrite": (
        "You improve training data for a game's character AI. You get a character, their situation "
        "and a draft answer with three candidate next actions. Rewrite the draft so it reads like a "
        "thoughtful writer made it: keep the three different kinds of action and their order, keep "
        "them grounded in the situation and the background, name the character in each one and say "
        "why. At most 200 characters each. Answer with a JSON object with keys purpose_a, purpose_b "
        "and purpose_c only."
    ),
}
_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


class TeacherError(RuntimeError):
    """The teacher endpoint cannot be used at all (unreachable, refuses, wrong URL)."""


@dataclass
class TeacherReport:
    """What the teacher did to a dataset."""

    requested: int = 0
    accepted: int = 0
    cached: int = 0
    kept_reference: int = 0
    rejections: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly summary."""
        return {
            "requested": self.requested,
            "accepted": self.accepted,
            "cached": self.cached,
            "kept_reference": self.kept_reference,
            "rejections": dict(self.rejections.most_common()),
            "seconds": round(self.seconds, 1),
        }


def build_endpoint(url: str) -> str:
    """The chat-completions URL for a server root, a ``/v1`` base, or the full endpoint."""
    url = url.rstrip("/")
    if url.endswith("/chat/completions"):
        return url
    if url.endswith("/v1"):
        return url + "/chat/completions"
    return url + "/v1/chat/completions"


def build_teacher_messages(example: Example, mode: TeacherMode) -> list[dict[str, str]]:
    """System instructions plus the engine's own user message (and the draft when rewriting)."""
    user = build_user_message(example.profile, example.situation)
    if mode == "rewrite":
        user += "\n\nDraft answer:\n" + example.motivation.model_dump_json()
    return [{"role": "system", "content": _INSTRUCTIONS[mode]}, {"role": "user", "content": user}]


def build_request_body(example: Example, settings: TeacherSettings) -> dict[str, Any]:
    """The JSON body of one chat-completions request."""
    body: dict[str, Any] = {
        "model": settings.model,
        "messages": build_teacher_messages(example, settings.mode),
        "temperature": settings.temperature,
        "max_tokens": settings.max_tokens,
    }
    if settings.json_schema:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "motivation", "schema": motivation_json_schema(), "strict": True},
        }
    return body


def check_teacher_answer(text: str, example: Example) -> Motivation:
    """Parse and validate one answer; raises InvalidOutput naming the failed check."""
    match = _FENCE.match(text)
    motivation = parse_motivation(match.group(1) if match else text.strip(), example.profile.name)
    for key, purpose in zip(("purpose_a", "purpose_b", "purpose_c"), motivation.purposes(), strict=True):
        if not names_character(purpose, example.profile.name):
            raise InvalidOutput("grounding", f"{key} does not name {example.profile.name}")
    return motivation


class TeacherClient:
    """A minimal OpenAI-compatible chat client (stdlib HTTP: no SDK needed for one endpoint)."""

    def __init__(self, settings: TeacherSettings) -> None:
        self.settings = settings
        self.endpoint = build_endpoint(settings.url)
        key = os.environ.get(settings.api_key_env) if settings.api_key_env else None
        self._headers = {"Content-Type": "application/json"}
        if key:
            self._headers["Authorization"] = f"Bearer {key}"

    def complete(self, body: dict[str, Any]) -> str:
        """The assistant text of one completion; TeacherError when the endpoint is unusable."""
        request = urllib.request.Request(
            self.endpoint, data=json.dumps(body).encode(), headers=self._headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.settings.timeout_s) as response:
                payload = json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as err:
            detail = err.read().decode("utf-8", "replace")[:200]
            if err.code in (401, 403, 404):  # wrong key or URL: retrying cannot help
                raise TeacherError(f"teacher {self.endpoint}: HTTP {err.code}: {detail}") from None
            raise InvalidOutput("http", f"HTTP {err.code}: {detail}") from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as err:
            reason = getattr(err, "reason", err)
            raise TeacherError(f"teacher {self.endpoint} unreachable: {reason}") from None
        except json.JSONDecodeError:
            raise InvalidOutput("http", "the response body is not JSON") from None
        try:
            content = payload["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise InvalidOutput("http", "no choices[0].message.content in the response") from None
        if not isinstance(content, str):
            raise InvalidOutput("http", "message.content is not text")
        return content


def _load_cache(path: Path | None, settings: TeacherSettings) -> dict[str, Motivation]:
    if path is None or not path.exists():
        return {}
    out = {}
    for line in path.read_text("utf-8").splitlines():
        try:
            row = json.loads(line)
            if row.get("model") == settings.model and row.get("mode") == settings.mode:
                out[row["id"]] = Motivation.model_validate(row["motivation"])
        except (ValueError, KeyError, TypeError):
            continue  # a torn last line from an interrupted run
    return out


def distill(
    examples: Sequence[Example],
    settings: TeacherSettings,
    *,
    cache_path: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[Example], TeacherReport]:
    """Examples with teacher-written references where the teacher's answer passed every check.

    Raises TeacherError when the endpoint is unreachable or refuses the credentials, so a typo in
    the URL fails at once instead of silently keeping every reference.
    """
    client = TeacherClient(settings)
    report = TeacherReport(requested=len(examples))
    cache = _load_cache(cache_path, settings)
    lock = threading.Lock()
    started = time.monotonic()
    done = 0

    def one(example: Example) -> Example:
        nonlocal done
        answer = cache.get(example.id)
        if answer is not None:
            with lock:
                report.cached += 1
        else:
            for _ in range(settings.attempts):
                try:
                    answer = check_teacher_answer(
                        client.complete(build_request_body(example, settings)), example
                    )
                    break
                except InvalidOutput as err:
                    with lock:
                        report.rejections[err.stage] += 1
            with lock:
                if answer is None:
                    report.kept_reference += 1
                else:
                    report.accepted += 1
                    if cache_path is not None:
                        row = {"id": example.id, "model": settings.model, "mode": settings.mode,
                               "motivation": answer.model_dump()}  # fmt: skip
                        with cache_path.open("a", encoding="utf-8") as fh:
                            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        with lock:
            done += 1
            if progress:
                progress(done, len(examples))
        if answer is None:
            return example
        meta = dict(example.meta, reference=f"teacher:{settings.model}:{settings.mode}")
        return replace(example, motivation=answer, meta=meta)

    if cache_path is not None:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
    pool = ThreadPoolExecutor(max_workers=settings.workers)
    try:
        results = list(pool.map(one, examples))
    except TeacherError:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown()
    report.seconds = time.monotonic() - started
    return results, report
