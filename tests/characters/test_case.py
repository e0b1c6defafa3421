import json
from pathlib import Path

import pytest

from characters import CaseError, build_seed_record, load_case

PUBLIC = Path(__file__).resolve().parents[2] / "finetune" / "data" / "public_cases.jsonl"


def test_seed_format_loads_into_same_models():
    case = load_case(
        {
            "Character_name": "Lin Yu",
            "Character_description": "Male, 20, student.",
            "Context": "He wakes up early on Monday.",
            "Background": "He just went through a breakup.",
        }
    )
    assert case.profile.name == "Lin Yu"
    assert case.situation.context == "He wakes up early on Monday."
    assert build_seed_record(case.profile, case.situation)["Background"] == "He just went through a breakup."


def test_nested_and_flat_formats_agree():
    flat = load_case({"id": 7, "name": "A", "description": "d", "situation": "s", "background": "b"})
    nested = load_case(
        {
            "id": "7",
            "profile": {"name": "A", "description": "d", "background": "b"},
            "situation": {"context": "s"},
        }
    )
    assert flat == nested
    assert flat.id == "7"


def test_public_cases_all_load():
    lines = PUBLIC.read_text("utf-8").splitlines()
    cases = [load_case(json.loads(line)) for line in lines if line.strip()]
    assert len(cases) >= 10
    assert all(c.id and c.profile.name and c.situation.context for c in cases)


@pytest.mark.parametrize(
    "record, needle",
    [
        ({"name": "A", "description": "d"}, "situation: missing"),
        ({"name": "A", "description": "d", "situation": "s", "bogus": 1}, "unknown keys: bogus"),
        ({"name": "", "description": "d", "situation": "s"}, "profile.name"),
        ({"profile": {"name": "A", "description": "d"}, "situation": {"context": ""}}, "situation.context"),
        ({"profile": {"name": "A"}, "situation": "s"}, "profile.description"),
    ],
)
def test_bad_records_name_the_field(record, needle):
    with pytest.raises(CaseError, match=needle):
        load_case(record)


def test_non_mapping_record():
    with pytest.raises(CaseError, match="expected an object"):
        load_case(["not", "a", "dict"])  # type: ignore[arg-type]


def test_an_over_long_id_is_a_case_error():
    # found by the fuzzing in tests/engine/test_fuzz.py: it used to escape as pydantic's ValidationError
    record = {"id": "x" * 121, "name": "Ann", "description": "A nurse.", "situation": "Night."}
    with pytest.raises(CaseError, match="id: String should have at most 120 characters"):
        load_case(record)
