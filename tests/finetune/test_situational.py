"""Generator v2: every purpose answers the moment, and the moments files are checked on load."""

from pathlib import Path

import pytest

from characters import naming_problem
from engine.prompt import build_user_message
from finetune.data.corpus import reserved_names
from finetune.data.report import grounding_figures
from finetune.data.situational import (
    MOMENTS_DIR,
    MomentError,
    SituationalGenerator,
    generate_situational,
    load_moments,
)
from finetune.metrics import has_stock_phrase, invented_names


@pytest.fixture(scope="module")
def examples():
    return generate_situational(1500, seed=3)


def test_same_seed_same_examples_and_many_situations(examples):
    again = generate_situational(50, seed=3)
    assert [(e.id, e.motivation) for e in again] == [(e.id, e.motivation) for e in examples[:50]]
    assert [e.id for e in generate_situational(50, seed=4)] != [e.id for e in again]
    moments, _ = load_moments()
    assert len(moments) >= 60 and len({e.meta["moment"] for e in examples}) >= 60
    assert len({e.situation.context for e in examples}) >= 0.99 * len(examples)
    assert {e.meta["stakes"] for e in examples} == {"quiet", "everyday", "urgent", "crisis"}


def test_every_reference_answers_its_moment(examples):
    figures = grounding_figures(examples)
    assert figures["grounded_references"] >= 0.99 and figures["grounded_purposes"] >= 0.85
    assert figures["name_echo"] == 0 and figures["invented_names"] == 0
    assert figures["max_4gram_share"] <= 0.03  # no stock lines: one moment's phrasing is a small share
    reserved = reserved_names()
    for ex in examples:
        name = ex.profile.name
        assert name not in reserved
        purposes = ex.motivation.purposes()
        assert all(p.startswith(name) and naming_problem(p, name) is None for p in purposes)
        assert not any(has_stock_phrase(p) for p in purposes)
        assert not invented_names(purposes, build_user_message(ex.profile, ex.situation))
        assert len(set(ex.meta["kinds"])) == 3  # three different angles


def write_moments(tmp_path: Path, body: str) -> Path:
    root = tmp_path / "moments"
    root.mkdir(exist_ok=True)
    (root / "people.yaml").write_text((MOMENTS_DIR / "people.yaml").read_text("utf-8"), "utf-8")
    (root / "x.yaml").write_text(body, "utf-8")
    load_moments.cache_clear()
    return root


GOOD = """
- key: spilled_ink
  genres: [fantasy]
  stakes: everyday
  fills:
    page: [the map, the ledger]
  situation: ["Ink has spilled across {page} at {work}."]
  act: [["blots {page} with sand", "before the ink sets"]]
  involve: [["asks {other} for a clean cloth for {page}", "since cloth lifts ink best"]]
  guard: [["moves the inkpot away from {page}", "so it cannot tip twice"]]
  need: [["sighs over {page}", "having copied it all morning"]]
"""


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (("{page} with sand", "{paper} with sand"), "unknown slot {paper}"),
        (("genres: [fantasy]", "genres: [western]"), "genres must be"),
        (("stakes: everyday", "stakes: dull"), "stakes must be"),
        (('  need: [["sighs over {page}", "having copied it all morning"]]\n', ""), "no need responses"),
        (
            ('["blots {page} with sand", "before the ink sets"]', '["blots {page} with sand"]'),
            "[action, reason] pairs",
        ),
        (("situation: [", "situation: [\n  - oops"), "invalid YAML"),
    ],
)
def test_bad_moments_name_the_file_and_the_moment(tmp_path, change, needle):
    root = write_moments(tmp_path, GOOD)
    SituationalGenerator(1, root).example(0)  # the good file loads and generates
    root = write_moments(tmp_path, GOOD.replace(*change))
    with pytest.raises(MomentError, match=r"x\.yaml") as err:
        SituationalGenerator(1, root)
    assert needle in str(err.value)
    load_moments.cache_clear()


def test_the_shipped_training_data_meets_its_bars(tmp_path):
    from finetune.config import load_config
    from finetune.data.dataset import build_dataset

    cfg = load_config(Path(__file__).resolve().parents[2] / "finetune/configs/default-v3.yaml")
    splits, _summary = build_dataset(
        cfg.data.model_copy(update={"out_dir": str(tmp_path)}), log=lambda s: None
    )
    train = splits["train"]
    assert {e.meta.get("source") for e in train} == {"corpus", "situational"}
    figures = grounding_figures(train)
    assert figures["grounded_references"] >= 0.90  # the bar for the shipped data
    assert figures["max_4gram_share"] <= 0.02  # no 4-gram in more than 2% of references
    assert figures["name_echo"] == 0 and figures["invented_names"] <= 0.005
    # the corpus's test part is the test split, never trained on
    test_ids = {e.id for e in splits["test"]}
    assert len(test_ids) >= 150 and not test_ids & {e.id for e in train}
    assert (tmp_path / "test.jsonl").exists() and (tmp_path / "gen_test.jsonl").exists()
