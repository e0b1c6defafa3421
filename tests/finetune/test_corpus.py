"""The hand-written corpus: its own rules hold, and the checker catches what it must."""

import json
from collections import Counter
from pathlib import Path

import pytest

from finetune.data.corpus import (
    GENRES,
    STAKES,
    check_corpus,
    corpus_files,
    corpus_split,
    load_corpus,
    load_corpus_file,
)
from finetune.metrics import moment_text


@pytest.fixture(scope="module")
def corpus():
    return load_corpus()


def test_shipped_corpus_passes_every_rule(corpus):
    report = check_corpus()
    assert report.ok, report.errors[:10]
    assert report.figures["examples"] == len(corpus) >= 1000
    assert report.figures["grounded_purposes"] >= 0.9


def test_corpus_spread_and_fixed_split(corpus):
    genres = Counter(ex.meta["genre"] for ex in corpus)
    stakes = Counter(ex.meta["stakes"] for ex in corpus)
    assert len(genres) >= 12 and set(genres) <= set(GENRES)
    assert set(stakes) == set(STAKES) and stakes["quiet"] >= 0.1 * len(corpus)
    assert len({ex.id for ex in corpus}) == len(corpus)
    assert len({ex.profile.name for ex in corpus}) >= 0.9 * len(corpus)
    assert len({moment_text(ex.situation) for ex in corpus}) == len(corpus)
    splits = Counter(corpus_split(ex.id) for ex in corpus)
    assert splits["test"] >= 150  # the main test set of the grounded-motivation metrics
    # the split is a pure function of the id: loading twice, or one file, changes nothing
    test_ids = {ex.id for ex in load_corpus(split="test")}
    assert test_ids == {ex.id for ex in corpus if corpus_split(ex.id) == "test"}
    one = corpus_files()[0]
    assert {ex.id for ex in load_corpus_file(one) if corpus_split(ex.id) == "test"} <= test_ids


GOOD = {
    "id": "modern-001",
    "genre": "modern",
    "stakes": "urgent",
    "profile": {"name": "Ines Carvalho", "description": "Female, 40, ferry mechanic in Lisbon. Calm, proud.",
                "background": "She has never missed a sailing in twelve years."},
    "situation": {"context": "Dawn. The ferry's starboard engine coughs black smoke at the quay, and the first commuters are queueing."},
    "motivation": {
        "purpose_a": "Ines Carvalho shuts down the smoking starboard engine and opens its hatch to find the fault.",
        "purpose_b": "Ines Carvalho asks the captain to hold the queueing commuters on the quay until the engine is safe.",
        "purpose_c": "Ines Carvalho radios the depot for a spare starboard injector, so the ferry still sails this morning.",
    },
}  # fmt: skip


def write(tmp_path: Path, records: list, name: str = "modern.jsonl") -> Path:
    path = tmp_path / name
    path.write_bytes(
        b"".join((r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in records)
    )
    return path


def with_purpose(key: str, text: str, **changes: object) -> dict:
    record = json.loads(json.dumps(GOOD))
    record["motivation"][key] = text
    record.update(changes)
    return record


def test_a_good_record_passes(tmp_path):
    report = check_corpus([write(tmp_path, [GOOD])])
    assert report.ok, report.errors


@pytest.mark.parametrize(
    ("record", "needle"),
    [
        (with_purpose("purpose_c", "Ines Carvalho tells Ines Carvalho about the starboard engine, so nobody is surprised."), "repeats the name"),
        (with_purpose("purpose_c", "After a very long night of thinking about the quay, Ines Carvalho checks the engine."), "not a short phrase"),
        (with_purpose("purpose_c", "Ines Carvalho gets on with the work on the starboard engine before the commuters board."), "stock phrase"),
        (with_purpose("purpose_c", "Ines Carvalho asks Rodrigo to check the starboard engine, because he knows ferries."), "names no one"),
        (with_purpose("purpose_c", "Ines Carvalho checks the engine."), "characters"),
        (with_purpose("purpose_c", "The engine coughs black smoke while the commuters wait on the quay at dawn."), "exact name"),
        (with_purpose("purpose_a", "x"), "motivation"),
        (with_purpose("purpose_b", "Calmly, Ines Carvalho asks the captain to hold the commuters on the quay."), "does not start with the name"),
        (with_purpose("purpose_b", "Ines Carvalho asks the captain to wait on the quay, since a ferry is never on time."), "since a <noun>"),
        (with_purpose("purpose_b", "Ines Carvalho holds the commuters on the quay, because a late ferry is better than a sunk one."), "better than"),
        (with_purpose("purpose_b", "Ines Carvalho fixes the starboard engine, because she is the only mechanic on the quay."), "the only"),
        (with_purpose("purpose_b", "Ines Carvalho listens to the starboard engine like a doctor listening to a chest."), "simile"),
        (with_purpose("purpose_b", "Ines Carvalho checks the starboard engine; the commuters can wait on the quay."), "semicolon"),
        (with_purpose("purpose_b", "Ines Carvalho opens the hatch of the smoking starboard engine at the quay and looks inside it carefully for the fault, because the first commuters are already queueing there."), "words"),
        (dict(GOOD, genre="space"), "genre"),
        (dict(GOOD, stakes="dire"), "stakes"),
        (dict(GOOD, id="modern-1"), "id"),
        ({k: v for k, v in GOOD.items() if k != "stakes"}, "missing"),
        (dict(GOOD, extra=1), "unknown"),
        (dict(GOOD, profile={"name": "Maya Lindqvist", "description": "Female, 30, baker."}), "test cast"),
    ],
)  # fmt: skip
def test_checker_names_each_broken_rule_with_file_and_line(tmp_path, record, needle):
    report = check_corpus([write(tmp_path, [GOOD, record])])
    assert not report.ok
    assert any(needle in e and e.startswith("modern.jsonl:2") for e in report.errors), report.errors


def test_checker_reports_bad_bytes_and_duplicates_by_line(tmp_path):
    other = json.loads(json.dumps(GOOD))
    other["id"] = "modern-002"
    report = check_corpus([write(tmp_path, [GOOD, b"\xff\xfe not utf-8", b"{not json", GOOD, other])])
    errors = "\n".join(report.errors)
    assert "modern.jsonl:2: not UTF-8" in errors
    assert "modern.jsonl:3: invalid JSON" in errors
    assert "id 'modern-001' is used 2 times" in errors
    assert "near duplicate" in errors  # modern-002 repeats the same situation
    misplaced = check_corpus([write(tmp_path, [GOOD], name="office.jsonl")])
    assert any("belongs in modern.jsonl" in e for e in misplaced.errors)
