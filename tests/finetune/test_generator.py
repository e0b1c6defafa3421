import json
import random
import re
from collections import Counter

import pytest

from characters import Motivation
from finetune.data.dataset import (
    build_sharegpt_record,
    case_from_record,
    load_sharegpt,
    save_dataset,
    split_examples,
    split_of,
)
from finetune.data.generator import KINDS, Generator, generate_examples
from finetune.data.occupations import ALL_OCCUPATIONS
from finetune.data.preferences import DEGRADATIONS, build_preference_pairs
from finetune.data.report import distinct_n
from finetune.data.world import MBTI_TYPES, SETTINGS


def test_vocabulary_breadth_meets_the_brief():
    assert len({occ[0] for _, occ in ALL_OCCUPATIONS}) >= 150
    assert len(MBTI_TYPES) == 16
    assert sum(len(v) for v in SETTINGS.values()) >= 40
    assert set(SETTINGS) == {"modern", "fantasy", "scifi", "historical"}


def test_sample_covers_types_ages_genres_and_kinds():
    examples = generate_examples(1500, seed=7)
    metas = [e.meta for e in examples]
    assert {m["mbti"] for m in metas} == set(MBTI_TYPES)
    assert {m["genre"] for m in metas} == set(SETTINGS)
    ages = [m["age"] for m in metas]
    assert min(ages) <= 10 and max(ages) >= 85
    assert len({m["occupation"] for m in metas}) >= 140
    assert len({m["setting"] for m in metas}) >= 40
    assert {k for m in metas for k in m["kinds"]} == set(KINDS)


def test_every_purpose_names_the_character_and_kinds_differ():
    for ex in generate_examples(400, seed=2):
        Motivation.model_validate(ex.motivation.model_dump())
        assert len(set(ex.meta["kinds"])) == 3
        for purpose in ex.motivation.purposes():
            assert ex.profile.name in purpose
            assert "{" not in purpose and "}" not in purpose, purpose  # no unfilled placeholder
            assert len(purpose) <= 200
        assert "{" not in ex.situation.context + ex.profile.background


def test_incident_purpose_is_grounded_in_the_situation():
    grounded = 0
    examples = generate_examples(300, seed=4)
    for ex in examples:
        if ex.meta["kinds"][0] != "incident":
            continue
        words = {w for w in re.findall(r"[a-z]+", ex.situation.context.lower()) if len(w) > 3}
        grounded += bool(words & set(re.findall(r"[a-z]+", ex.motivation.purpose_a.lower())))
    first_incident = sum(ex.meta["kinds"][0] == "incident" for ex in examples)
    assert first_incident > 50
    assert grounded / first_incident > 0.7


def test_surface_variety():
    purposes = [p for ex in generate_examples(800, seed=5) for p in ex.motivation.purposes()]
    assert distinct_n(purposes, 2) > 0.08
    top_share = Counter(purposes).most_common(1)[0][1] / len(purposes)
    assert top_share < 0.01


def test_same_seed_same_examples_and_split_is_deterministic():
    a = generate_examples(50, seed=9)
    b = generate_examples(50, seed=9)
    assert [e.id for e in a] == [e.id for e in b]
    assert a[3].motivation == b[3].motivation
    assert generate_examples(50, seed=10)[0].id != a[0].id
    assert Generator(9).example(3).id == a[3].id or any(e.id == Generator(9).example(3).id for e in a)
    splits = split_examples(generate_examples(1000, seed=1))
    sizes = {k: len(v) for k, v in splits.items()}
    assert 740 <= sizes["train"] <= 860 and 60 <= sizes["val"] <= 140 and 60 <= sizes["test"] <= 140
    assert all(split_of(e.id) == "train" for e in splits["train"])


def test_no_duplicate_examples():
    examples = generate_examples(600, seed=11)
    keys = [(e.profile.name, e.situation.context) for e in examples]
    assert len(set(keys)) == len(keys)


def test_sharegpt_round_trip_and_messages_records(tmp_path):
    examples = generate_examples(30, seed=12)
    counts = save_dataset(examples, tmp_path)
    assert sum(counts.values()) == 30
    loaded = load_sharegpt(tmp_path / "train.sharegpt.json")
    train = split_examples(examples)["train"]
    assert len(loaded) == len(train)
    for (case, motivation), ex in zip(loaded, train, strict=True):
        assert case.profile.name == ex.profile.name
        assert case.situation.context == ex.situation.context
        assert case.profile.background == ex.profile.background
        assert motivation == ex.motivation
    record = json.loads((tmp_path / "train.jsonl").read_text().splitlines()[0])
    assert [m["role"] for m in record["messages"]] == ["system", "user", "assistant"]
    case, ref = case_from_record(record)
    assert ref.model_dump_json() == record["messages"][-1]["content"]
    shared = build_sharegpt_record(examples[0])
    assert json.loads(shared["conversations"][0]["value"])["Character_name"] == examples[0].profile.name


def test_sharegpt_import_errors_name_the_record(tmp_path):
    import pytest

    from finetune.data.dataset import DatasetError

    path = tmp_path / "bad.json"
    path.write_text(
        json.dumps([{"conversations": [{"from": "human", "value": "{}"}, {"from": "gpt", "value": "{}"}]}])
    )
    with pytest.raises(DatasetError, match="record #1"):
        load_sharegpt(path)


def test_dpo_pairs_reject_each_degradation():
    from finetune.data.preferences import grounded_reference
    from finetune.metrics import invented_names

    examples = generate_examples(40, seed=13, ground_others=False)  # some references name strangers
    pairs = build_preference_pairs(examples, 24, seed=1)
    assert len(pairs) == 24
    assert {p["kind"] for p in pairs} == set(DEGRADATIONS)
    for pair in pairs:
        chosen = json.loads(pair["chosen"][0]["content"])
        rejected = json.loads(pair["rejected"][0]["content"])
        assert chosen != rejected
        assert pair["prompt"][0]["role"] == "system" and pair["prompt"][1]["role"] == "user"
        name = pair["prompt"][1]["content"].splitlines()[0].removeprefix("Name: ")
        if pair["kind"] == "duplicated":
            assert rejected["purpose_a"] == rejected["purpose_b"]
        if pair["kind"] == "wrong_name":
            assert all(name not in v for v in rejected.values())
        if pair["kind"] == "generic":
            assert all(len(v) < 60 for v in rejected.values())
        if pair["kind"] == "invented_person":
            assert invented_names(list(rejected.values()), pair["prompt"][1]["content"])
        if pair["kind"] == "mangled_name":
            changed = [k for k in chosen if chosen[k] != rejected[k]]
            assert len(changed) == 1  # one near-miss name, the rest of the answer is the reference
    for pair in pairs:  # chosen sides never name a person the prompt leaves out
        assert not invented_names(
            list(json.loads(pair["chosen"][0]["content"]).values()), pair["prompt"][1]["content"]
        )
    assert sum(not grounded_reference(e) for e in examples) > 0  # the generator does make such references
    grounded = next(e for e in examples if grounded_reference(e))
    base_outputs = {grounded.id: '{"purpose_a":"x","purpose_b":"x","purpose_c":"x"}'}
    with_base = build_preference_pairs([grounded], 1, seed=1, base_outputs=base_outputs)
    assert with_base[0]["kind"] == "base_model"


def test_mangled_names_are_near_misses_never_the_name():
    import random

    from finetune.data.preferences import mangle_name

    rng = random.Random(3)
    for name, other in [("Tom Hutchins", "Ming Chen"), ("Mingchen", "Ada Lovelace"), ("Ida", "Bo")]:
        wrongs = {mangle_name(name, other, rng) for _ in range(40)}
        assert name not in wrongs and len(wrongs) >= 3
        # each keeps something of the name: a near miss, not a stranger
        assert all(name[:2] in w for w in wrongs)


def test_weak_own_answers_become_on_policy_rejections(monkeypatch):
    import engine.models
    from finetune.dpo import find_weak_answers
    from finetune.metrics import content_words
    from tests.conftest import FakeBackend

    examples = generate_examples(7, seed=8)
    names = [ex.profile.name for ex in examples]

    def grounded_answer(ex):  # three different purposes, each reusing a word of the situation
        w = sorted(content_words(ex.situation.context) - content_words(ex.profile.name))
        return json.dumps({"purpose_a": f"{ex.profile.name} deals with the {w[0]} first.",
                           "purpose_b": f"{ex.profile.name} asks about the {w[1]} at once.",
                           "purpose_c": f"{ex.profile.name} writes down what the {w[2]} means."})  # fmt: skip

    w1 = sorted(content_words(examples[1].situation.context) - content_words(names[1]))[0]
    same = json.dumps({"purpose_a": f"{names[1]} goes to the {w1} shop.", "purpose_b": f"{names[1]} goes to the {w1} shop now.",
                       "purpose_c": f"{names[1]} goes to the {w1} shop today."})  # fmt: skip
    invented = json.dumps({"purpose_a": f"{names[2]} asks Zebediah for help.", "purpose_b": f"{names[2]} rests at home.",
                           "purpose_c": f"{names[2]} eats a late lunch."})  # fmt: skip
    stock = json.dumps({"purpose_a": f"{names[5]} gets on with the work at once.", "purpose_b": f"{names[5]} naps a while.",
                        "purpose_c": f"{names[5]} reads a book by the fire."})  # fmt: skip
    elsewhere = json.dumps({"purpose_a": f"{names[6]} bakes bread for the fair.", "purpose_b": f"{names[6]} calls the bank about money.",
                            "purpose_c": f"{names[6]} walks along the quay alone."})  # fmt: skip
    backend = FakeBackend(
        [
            grounded_answer(examples[0]),
            same,
            invented,
            '{"purpose_a": "x"',
            grounded_answer(examples[4]),
            stock,
            elsewhere,
        ]
    )
    monkeypatch.setattr(engine.models, "load_backend", lambda spec: backend)

    weak, reasons = find_weak_answers("scripted", examples, threshold=0.75)

    assert set(weak) == {examples[i].id for i in (1, 2, 3, 5, 6)}
    assert reasons == {"not_distinct": 1, "invented_name": 1, "json": 1, "stock": 1, "ungrounded": 1}
    pairs = build_preference_pairs(examples, 7, seed=0, base_outputs=weak, model_kind="own_output")
    from finetune.data.preferences import grounded_reference

    own = [p for p in pairs if p["kind"] == "own_output"]
    # an example whose reference names a stranger is no chosen side, so its weak answer goes unused
    usable = {ex.id for ex in examples if ex.id in weak and grounded_reference(ex)}
    assert len(usable) >= 2 and {p["id"] for p in own} == usable
    assert all(p["rejected"][0]["content"] == weak[p["id"]] for p in own)


def test_grounded_others_change_only_references_that_named_a_stranger():
    from finetune.data.preferences import grounded_reference

    old = generate_examples(300, seed=4, ground_others=False)
    new = generate_examples(300, seed=4)
    assert [(e.id, e.profile, e.situation) for e in old] == [(e.id, e.profile, e.situation) for e in new]
    strangers = [i for i, e in enumerate(old) if not grounded_reference(e)]
    assert len(strangers) > 20  # ~15% of the old references name someone the prompt leaves out
    changed = {i for i, (a, b) in enumerate(zip(old, new, strict=True)) if a.motivation != b.motivation}
    # every changed reference was one naming a stranger, and now says who they are to the character
    stranger_refs = [new[i] for i in strangers]
    assert sum(grounded_reference(e) for e in stranger_refs) >= 0.9 * len(stranger_refs)
    assert all(i in strangers for i in changed)


def test_grounded_degradations_are_what_the_checks_reject():
    from characters import Motivation
    from engine.validation import InvalidOutput, parse_motivation
    from finetune.data.preferences import GROUNDED_DEGRADATIONS, degrade
    from finetune.data.situational import generate_situational
    from finetune.metrics import has_stock_phrase

    pool = generate_situational(30, seed=2)
    rng = random.Random(0)
    for ex in pool[:10]:
        for kind in GROUNDED_DEGRADATIONS:
            bad = degrade(ex, kind, pool, rng)
            assert bad != ex.motivation.model_dump_json()
            if kind == "stock":
                assert any(has_stock_phrase(p) for p in Motivation.model_validate_json(bad).purposes())
            if kind in ("name_echo", "long_lead"):
                with pytest.raises(InvalidOutput) as err:
                    parse_motivation(bad, ex.profile.name)
                assert err.value.stage == "naming"


def test_dpo_reads_collected_answers_and_takes_chosen_sides_from_the_corpus(tmp_path):
    from finetune.config import RunConfig
    from finetune.data.corpus import load_corpus
    from finetune.data.situational import generate_situational
    from finetune.dpo import chosen_pool, collect_weak_answers

    corpus = load_corpus(split="train")[:40]
    train = corpus + generate_situational(40, seed=1)
    collected = tmp_path / "own.jsonl"
    stock = json.dumps({"purpose_a": f"{corpus[0].profile.name} gets on with the work.",
                        "purpose_b": f"{corpus[0].profile.name} rests.", "purpose_c": f"{corpus[0].profile.name} eats."})  # fmt: skip
    collected.write_text(json.dumps({"id": corpus[0].id, "text": stock}) + "\n", "utf-8")
    cfg = RunConfig.model_validate(
        {
            "dpo": {
                "enabled": True,
                "rejected_file": str(collected),
                "chosen_from": "corpus",
                "pairs": 12,
                "kinds": ["stock", "name_echo"],
            }
        }
    )
    pool = chosen_pool(cfg, train)
    assert {ex.meta["source"] for ex in pool} == {"corpus"}
    weak, reasons = collect_weak_answers(cfg, pool)
    assert weak == {corpus[0].id: stock} and reasons == {"stock": 1}
    pairs = build_preference_pairs(pool, 12, base_outputs=weak, model_kind="own_output", kinds=cfg.dpo.kinds)
    kinds = {p["kind"] for p in pairs}
    assert kinds <= {"own_output", "stock", "name_echo"} and {"stock", "name_echo"} <= kinds
    missing = cfg.model_copy(
        update={"dpo": cfg.dpo.model_copy(update={"rejected_file": str(tmp_path / "no.jsonl")})}
    )
    with pytest.raises(FileNotFoundError, match=r"no\.jsonl"):
        collect_weak_answers(missing, pool)
