import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from characters import CastError, list_casts, load_cast, parse_cast
from characters.cast import CASTS_DIR

GOOD_CHAR = {"name": "Ann", "description": "A nurse."}


def write(tmp_path, text, name="cast.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ["town", "village"])
def test_shipped_casts_load_with_lively_distinct_profiles(name):
    cast = load_cast(name)
    assert len(cast.characters) >= 8
    names = [c.name for c in cast.characters]
    assert len(set(names)) == len(names)
    descriptions = {c.description for c in cast.characters}
    assert len(descriptions) == len(names)
    for c in cast.characters:
        assert c.background and c.occupation and c.mbti and c.traits and c.goals
        for other in c.relationships:
            assert other in names, f"{c.name} knows unknown {other}"


def test_list_casts_and_load_by_path():
    assert {"town", "village"} <= set(list_casts())
    assert load_cast(CASTS_DIR / "town.yaml").name == load_cast("town").name


def test_json_cast(tmp_path):
    path = write(tmp_path, json.dumps({"name": "J", "characters": [GOOD_CHAR]}), "cast.json")
    assert load_cast(path).characters[0].name == "Ann"


# Each malformed file must fail with an error naming the file, and the character and field when
# there is one.
MALFORMED = [
    ("name: X\ncharacters: [\n", ["invalid YAML", "line"]),
    ("- just\n- a list\n", ["expected a mapping"]),
    ("name: X\n", ["'characters' must be a non-empty list"]),
    ("name: X\ncharacters: []\n", ["'characters' must be a non-empty list"]),
    ("name: X\ncharacters:\n  - 42\n", ["character #1", "expected a mapping"]),
    ("name: X\ncharacters:\n  - name: Bo\n", ["character #1 ('Bo')", "field 'description'"]),
    (
        "name: X\ncharacters:\n  - {name: Bo, description: d}\n  - {name: Cy, description: d, age: old}\n",
        ["character #2 ('Cy')", "field 'age'"],
    ),
    ("name: X\ncharacters:\n  - {name: Bo, description: d, mood: grumpy}\n", ["field 'mood'"]),
    ("name: X\ncharacters:\n  - {name: Bo, description: d, mbti: XXXX}\n", ["field 'mbti'"]),
    (
        "name: X\ncharacters:\n  - {name: Bo, description: d}\n  - {name: bo, description: e}\n",
        ["duplicate name"],
    ),
    ("characters:\n  - {name: Bo, description: d}\n", ["field 'name'"]),
    ("name: X\ncharacters:\n  - {name: Bo, description: d, traits: [ok, '']}\n", ["field 'traits'"]),
]


@pytest.mark.parametrize("text, needles", MALFORMED)
def test_malformed_casts_name_file_character_and_field(tmp_path, text, needles):
    path = write(tmp_path, text)
    with pytest.raises(CastError) as info:
        load_cast(path)
    message = str(info.value)
    assert str(path) in message
    for needle in needles:
        assert needle in message


def test_missing_and_binary_files(tmp_path):
    with pytest.raises(CastError, match="file not found"):
        load_cast(tmp_path / "nope.yaml")
    path = tmp_path / "bin.yaml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(CastError, match="not UTF-8"):
        load_cast(path)


def test_cast_never_half_loads(tmp_path):
    text = (
        "name: X\ncharacters:\n"
        + "".join(f"  - {{name: C{i}, description: d}}\n" for i in range(5))
        + "  - {name: Bad}\n"
    )
    with pytest.raises(CastError) as info:
        load_cast(write(tmp_path, text))
    assert "character #6" in str(info.value)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)
profile_like = st.fixed_dictionaries(
    {},
    optional={
        "name": st.one_of(st.text(max_size=90), st.integers()),
        "description": st.one_of(st.text(max_size=700), st.none()),
        "background": st.text(max_size=20),
        "age": st.one_of(st.integers(-5, 200), st.text(max_size=4)),
        "mbti": st.text(max_size=5),
        "traits": st.lists(st.text(max_size=130), max_size=14),
        "relationships": st.dictionaries(st.text(max_size=90), st.text(max_size=210), max_size=3),
        "junk": json_values,
    },
)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        json_values,
        st.fixed_dictionaries(
            {"name": st.text(max_size=5), "characters": st.lists(profile_like, max_size=4)}
        ),
    )
)
def test_random_input_only_ever_raises_cast_error(data):
    try:
        cast = parse_cast(data, "fuzz.yaml")
    except CastError as err:
        assert str(err).startswith("fuzz.yaml: ")
    else:
        assert cast.characters
