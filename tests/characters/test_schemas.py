import json

import jsonschema
import pytest
from pydantic import ValidationError

from characters import (
    CharacterProfile,
    Motivation,
    Situation,
    build_json_schemas,
    load_json_schema,
    motivation_json_schema,
)
from characters.schema import SCHEMA_DIR, render_schema

GOOD = {
    "purpose_a": "Chloe fixes the espresso machine before the rush, to keep her job.",
    "purpose_b": "Chloe calls her manager to warn him, hoping to avoid blame.",
    "purpose_c": "Chloe sketches the chaos on a napkin, because art calms her.",
}


def test_motivation_round_trips_through_json():
    m = Motivation.model_validate(GOOD)
    again = Motivation.model_validate_json(m.model_dump_json())
    assert again == m
    assert again.purposes() == (GOOD["purpose_a"], GOOD["purpose_b"], GOOD["purpose_c"])


@pytest.mark.parametrize(
    "change, needle",
    [
        ({"purpose_b": GOOD["purpose_a"]}, "duplicates"),
        ({"purpose_c": GOOD["purpose_a"].upper() + "!"}, "duplicates"),
        ({"purpose_a": "   "}, "purpose_a"),
        ({"purpose_a": "..."}, "no words"),
        ({"purpose_a": "x" * 201}, "purpose_a"),
        ({"extra": "field"}, "extra"),
    ],
)
def test_motivation_rejects_bad_outputs(change, needle):
    with pytest.raises(ValidationError) as info:
        Motivation.model_validate({**GOOD, **change})
    assert needle in str(info.value)


def test_motivation_requires_all_three():
    data = dict(GOOD)
    del data["purpose_c"]
    with pytest.raises(ValidationError, match="purpose_c"):
        Motivation.model_validate(data)


def test_jsonschema_and_pydantic_agree_on_valid_and_invalid():
    schema = motivation_json_schema()
    jsonschema.validate(GOOD, schema)
    bad = {**GOOD, "purpose_d": "nope"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
    with pytest.raises(ValidationError):
        Motivation.model_validate(bad)
    assert schema["additionalProperties"] is False
    assert all(schema["properties"][k]["maxLength"] == 200 for k in ("purpose_a", "purpose_b", "purpose_c"))


@pytest.mark.parametrize("name", ["motivation", "profile", "situation"])
def test_checked_in_schema_matches_models(name):
    path = SCHEMA_DIR / f"{name}.schema.json"
    assert path.exists(), f"{path} missing: run `daydream schema export`"
    assert path.read_text("utf-8") == render_schema(build_json_schemas()[name]), (
        f"{path} drifted from the pydantic model: run `daydream schema export` and commit"
    )
    assert load_json_schema(name) == build_json_schemas()[name]


def test_profile_accepts_seed_aliases_and_structured_fields():
    p = CharacterProfile.model_validate(
        {
            "Character_name": "Lin Yu",
            "Character_description": "A student who just went through a breakup.",
            "Background": "Exams are next week.",
        }
    )
    assert (p.name, p.background) == ("Lin Yu", "Exams are next week.")
    q = CharacterProfile(name="Ann", description="Nurse", mbti="intj", traits=[" calm "], age=40)
    assert q.mbti == "INTJ" and q.traits == ["calm"]


@pytest.mark.parametrize(
    "data, field",
    [
        ({"name": "", "description": "x"}, "name"),
        ({"name": "A", "description": "x", "mbti": "ABCD"}, "mbti"),
        ({"name": "A", "description": "x", "age": -3}, "age"),
        ({"name": "A", "description": "x", "traits": ["ok", ""]}, "traits"),
        ({"name": "A", "description": "x", "colour": "red"}, "colour"),
        ({"name": "A", "description": "d" * 601}, "description"),
    ],
)
def test_profile_errors_name_the_field(data, field):
    with pytest.raises(ValidationError) as info:
        CharacterProfile.model_validate(data)
    assert field in str(info.value)


def test_situation_aliases_and_bounds():
    assert Situation.model_validate({"Context": "Dawn."}).context == "Dawn."
    with pytest.raises(ValidationError, match="context"):
        Situation.model_validate({"context": "   "})
    with pytest.raises(ValidationError, match="nearby"):
        Situation(context="x", nearby=["a"] * 17)


def test_schema_files_are_valid_json_schema():
    for name, schema in build_json_schemas().items():
        jsonschema.validators.validator_for(schema).check_schema(schema)
        assert json.loads(render_schema(schema)) == schema, name
