"""Shared fixtures: a scripted fake backend (queue outputs, record calls) and sample inputs."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path

import pytest

from characters import CharacterProfile, Situation
from engine.request import DecisionRequest, RawDecision

ROOT = Path(__file__).resolve().parents[1]
PUBLIC_CASES = ROOT / "finetune" / "data" / "public_cases.jsonl"


def motivation_json(name: str = "Ann", tag: str = "") -> str:
    """A valid Motivation as JSON text, distinct per ``tag``."""
    return json.dumps(
        {
            "purpose_a": f"{name} fixes the leak first{tag}, because customers are coming.",
            "purpose_b": f"{name} phones the manager{tag} to ask for help.",
            "purpose_c": f"{name} takes a breath and makes coffee{tag} for herself.",
        }
    )


class FakeBackend:
    """Scripted backend: returns queued outputs in order (or a default), records every call."""

    name = "fake"

    def __init__(
        self, outputs: Sequence[str | Exception] = (), delay_s: float = 0.0, default: str | None = None
    ):
        self.model_id = "fake-model"
        self.outputs: deque[str | Exception] = deque(outputs)
        self.delay_s = delay_s
        self.default = default if default is not None else motivation_json()
        self.calls: list[list[DecisionRequest]] = []
        self.release = threading.Event()
        self.release.set()

    def generate(self, requests: Sequence[DecisionRequest]) -> list[RawDecision]:
        self.calls.append(list(requests))
        self.release.wait(10)
        if self.delay_s:
            time.sleep(self.delay_s)
        out = []
        for _ in requests:
            item = self.outputs.popleft() if self.outputs else self.default
            if isinstance(item, Exception):
                raise item
            out.append(RawDecision(text=item, prompt_tokens=100, output_tokens=40))
        return out


class FakeStreamBackend(FakeBackend):
    """FakeBackend with continuous batching: between steps it takes what the service hands over,
    and answers each request ``steps`` steps after it joined, one by one (``generate`` still works).

    ``calls`` holds each take's requests, ``streams`` counts ``generate_stream`` calls, ``live``
    the number of requests decoding at each step.
    """

    def __init__(self, *args, steps: int = 2, step_s: float = 0.01, max_batch: int = 16, **kwargs):
        super().__init__(*args, **kwargs)
        self.steps, self.step_s, self.max_batch = steps, step_s, max_batch
        self.streams = 0
        self.live: list[int] = []

    def generate_stream(self, take, emit) -> float:
        self.streams += 1
        live: list[list] = []  # [request, steps left]
        steps = total = 0
        while True:
            new = list(take(self.max_batch - len(live)))
            if new:
                self.calls.append(new)
                live += [[request, self.steps] for request in new]
            if not live:
                return total / steps if steps else 0.0
            self.release.wait(10)
            time.sleep(self.step_s)
            steps += 1
            total += len(live)
            self.live.append(len(live))
            for item in list(live):
                request = item[0]
                item[1] -= 1
                if request.is_abandoned():
                    live.remove(item)
                    emit(request, RawDecision(text="", error="abandoned: answered elsewhere"))
                elif item[1] <= 0:
                    live.remove(item)
                    out = self.outputs.popleft() if self.outputs else self.default
                    if isinstance(out, Exception):
                        raise out
                    emit(request, RawDecision(text=out, prompt_tokens=100, output_tokens=40, decode_s=0.01))


@pytest.fixture
def fake_backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def profile() -> CharacterProfile:
    return CharacterProfile(
        name="Chloe Martin",
        description="Female, 24, barista and part-time art student. Friendly, scattered, always broke.",
        background="Her rent is due on Friday and her manager has warned her about being late again.",
        goals=["pay the rent", "finish her portfolio"],
    )


@pytest.fixture
def situation() -> Situation:
    return Situation(
        context="Wednesday 6:45 am. The espresso machine is leaking and the rush starts in fifteen minutes.",
        nearby=["Sam (coworker, friendly)"],
    )


def load_public_cases():
    from characters import load_case

    return [
        load_case(json.loads(line)) for line in PUBLIC_CASES.read_text("utf-8").splitlines() if line.strip()
    ]
