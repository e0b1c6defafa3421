"""The published schema states exactly the limits the validators enforce.

Each body below passes the OpenAPI request schema exactly when the server accepts it; the
patterns behind trimmed text and MBTI types are checked against ``str.strip()`` and validation.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator

import jsonschema
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from characters import CharacterProfile
from characters.fields import SPACE, trimmed_pattern
from characters.profile import MBTI_INPUT_PATTERN
from engine import DecisionService
from engine.serve.app import build_app
from tests.serve.conftest import CASE

pytestmark = pytest.mark.timeout(60)

PROFILE = CASE["profile"]
SITUATION = CASE["situation"]


def with_profile(**fields: object) -> dict[str, object]:
    return {**CASE, "profile": {**PROFILE, **fields}}


def with_situation(situation: object) -> dict[str, object]:
    return {**CASE, "situation": situation}


# (label, body, whether the server takes it)
BODIES = [
    ("plain", CASE, True),
    ("name trimmed", with_profile(name="  Mira Holt  "), True),
    ("name blank", with_profile(name="   "), False),
    ("name empty", with_profile(name=""), False),
    ("name 80", with_profile(name="a" * 80), True),
    ("name 81", with_profile(name="a" * 81), False),
    ("name 80 padded", with_profile(name=f" \t{'a' * 80}\n "), True),
    ("name control-char padded", with_profile(name="\x1cMira\x1f"), True),
    ("name only control whitespace", with_profile(name="\x1c\x1d"), False),
    ("name not text", with_profile(name=7), False),
    ("background blank", with_profile(background="   "), True),
    ("background 1501", with_profile(background="b" * 1501), False),
    ("relationship name empty", with_profile(relationships={"": "a friend"}), False),
    ("relationship name blank", with_profile(relationships={"  ": "a friend"}), False),
    ("relationship name 81", with_profile(relationships={"n" * 81: "x"}), False),
    ("relationship note empty", with_profile(relationships={"Bo": ""}), True),
    ("relationship note 201", with_profile(relationships={"Bo": "x" * 201}), False),
    ("32 relationships", with_profile(relationships={f"R{i}": "x" for i in range(32)}), True),
    ("33 relationships", with_profile(relationships={f"R{i}": "x" for i in range(33)}), False),
    ("trait empty", with_profile(traits=[""]), False),
    ("trait trimmed", with_profile(traits=[" calm "]), True),
    ("13 traits", with_profile(traits=["calm"] * 13), False),
    ("goal 121", with_profile(goals=["g" * 121]), False),
    ("mbti lower", with_profile(mbti=" intj "), True),
    ("mbti dotless i", with_profile(mbti="\u0131ntj"), True),
    ("mbti st ligature", with_profile(mbti="E\ufb06J"), True),
    ("mbti wrong", with_profile(mbti="ABCD"), False),
    ("mbti long", with_profile(mbti="INTJX"), False),
    ("age", with_profile(age=40), True),
    ("age float whole", with_profile(age=40.0), True),
    ("age text", with_profile(age="40"), False),
    ("age bool", with_profile(age=True), False),
    ("age 151", with_profile(age=151), False),
    ("id integer", {**CASE, "id": 7}, True),
    ("id float whole", {**CASE, "id": 7.0}, True),
    ("id float", {**CASE, "id": 7.5}, False),
    ("id bool", {**CASE, "id": True}, False),
    ("id 120", {**CASE, "id": "x" * 120}, True),
    ("id 121", {**CASE, "id": "x" * 121}, False),
    ("id past 64 bits", {**CASE, "id": 2**63}, False),
    ("situation text", with_situation("Rain at dawn."), True),
    ("situation blank text", with_situation("   "), False),
    ("situation null", with_situation(None), False),
    ("nearby empty item", with_situation({**SITUATION, "nearby": [""]}), False),
    ("17 nearby", with_situation({**SITUATION, "nearby": ["Bo"] * 17}), False),
    ("time 61", with_situation({**SITUATION, "time": "t" * 61}), False),
    ("deadline 0", {**CASE, "deadline_ms": 0}, False),
    ("deadline text", {**CASE, "deadline_ms": "100"}, False),
    ("deadline float whole", {**CASE, "deadline_ms": 100.0}, True),
    ("priority text", {**CASE, "priority": "high"}, False),
    ("seed negative", {**CASE, "seed": -1}, False),
    ("unknown key", {**CASE, "colour": "red"}, False),
    ("a list", [CASE, with_situation("Fog.")], True),
    ("an empty list", [], False),
]


@pytest.fixture(scope="module")
def rules_client() -> Iterator[TestClient]:
    with (
        DecisionService("rules", keep_finished=False, max_queue=1024) as svc,
        TestClient(build_app(svc)) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def request_schema(rules_client) -> jsonschema.Validator:
    doc = rules_client.get("/openapi.json").json()
    body = doc["paths"]["/v1/submit"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    schema = {**body, "components": doc["components"]}
    validator: jsonschema.Validator = jsonschema.Draft202012Validator(schema)
    return validator


@pytest.mark.parametrize(("label", "body", "accepted"), BODIES, ids=[b[0] for b in BODIES])
def test_the_schema_and_the_server_agree(rules_client, request_schema, label, body, accepted):
    assert request_schema.is_valid(body) is accepted, "the published schema"
    response = rules_client.post("/v1/submit", json=body)
    assert response.status_code == (202 if accepted else 422), response.text


def test_the_space_class_is_what_str_strip_removes():
    space = re.compile(SPACE)
    differ = [
        hex(c) for c in range(sys.maxunicode + 1) if (space.fullmatch(chr(c)) is not None) != chr(c).isspace()
    ]
    assert differ == []


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet=st.sampled_from(" \t\n\x1c\u3000\xa0ab."), max_size=9),
    st.integers(0, 3),
    st.integers(1, 6),
)
def test_trimmed_pattern_is_the_length_once_stripped(text, low, high):
    low = min(low, high)
    matches = re.search(trimmed_pattern(low, high), text) is not None
    assert matches == (low <= len(text.strip()) <= high)


def test_the_mbti_input_pattern_is_what_validation_takes():
    letters = set("EINSTFJP")
    # Every character that upper-cases to one of the letters (or into them), in every position.
    odd = [chr(c) for c in range(sys.maxunicode + 1) if set(chr(c).upper()) & letters]
    candidates = {"INTJ", " enfp\n", "EﬆJ", "ESTJ"}
    for ch in odd:
        candidates |= {ch + "NTJ", "E" + ch + "TJ", "EN" + ch + "J", "ENT" + ch, "E" + ch + "J"}
    for text in sorted(candidates):
        try:
            CharacterProfile(name="A", description="B", mbti=text)
            valid = True
        except ValidationError:
            valid = False
        assert (re.search(MBTI_INPUT_PATTERN, text) is not None) == valid, repr(text)
