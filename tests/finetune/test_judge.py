"""Blind judging: packets hide the systems, the key maps them back, the tally counts exactly."""

import json
from pathlib import Path

import pytest

from characters import Motivation
from engine.prompt import build_training_messages
from finetune.judge import JudgingError, main, tally_panel

NAMES = {"t-1": "Ana Ruiz", "t-2": "Bo Lind", "t-3": "Cai Wen"}


def _purposes(name: str, tag: str) -> dict[str, str]:
    return {k: f"{name} {tag} checks the {k[-1]} door at the station, to see who left it open." for k in ("purpose_a", "purpose_b", "purpose_c")}  # fmt: skip


def _write_inputs(tmp_path: Path) -> tuple[Path, Path, Path]:
    from characters import CharacterProfile, Situation

    test = tmp_path / "test.jsonl"
    rows = []
    for cid, name in NAMES.items():
        profile = CharacterProfile(name=name, description="Station guard, 40.")
        situation = Situation(context="Night. A door at the station stands open.")
        motivation = Motivation(**_purposes(name, "calmly"))
        rows.append({"id": cid, "messages": build_training_messages(profile, situation, motivation),
                     "profile": profile.model_dump(exclude_defaults=True),
                     "situation": situation.model_dump(exclude_defaults=True)})  # fmt: skip
    test.write_text("".join(json.dumps(r) + "\n" for r in rows))
    outputs = {}
    for system in ("alpha", "beta"):
        path = tmp_path / f"{system}.jsonl"
        lines = []
        for cid, name in NAMES.items():
            tag = {"alpha": "quickly", "beta": "slowly"}[system]
            raw = json.dumps(_purposes(name, tag)) if cid != "t-3" or system == "alpha" else "{broken"
            lines.append({"model": system, "set": "test_split", "case_id": cid, "name": name, "stage": "ok", "raw": raw})  # fmt: skip
            lines.append({"model": system, "set": "test_split", "case_id": cid, "name": name, "stage": "ok", "raw": "later seed"})  # fmt: skip
        path.write_text("".join(json.dumps(r) + "\n" for r in lines))
        outputs[system] = path
    return test, outputs["alpha"], outputs["beta"]


def _judge_all(panel: Path, label_of: dict[str, str], judge: str, overall: int = 3) -> None:
    key = json.loads((panel / "key.json").read_text())
    meta = json.loads((panel / "panel.json").read_text())
    by_packet: dict[int, list[str]] = {}
    for answer, number in meta["answers"].items():
        by_packet.setdefault(number, []).append(answer)
    for number, answers in by_packet.items():
        lines = [
            json.dumps({"answer": a, "labels": [label_of[key[a]]] * 3, "overall": overall}) for a in answers
        ]
        (panel / "judgements" / f"packet-{number:02d}.{judge}.jsonl").write_text("\n".join(lines) + "\n")


@pytest.fixture
def panel(tmp_path):
    test, alpha, beta = _write_inputs(tmp_path)
    root = tmp_path / "judging"
    code = main(["packets", "--panel", "p", "--root", str(root), "--references", str(test), "--test-cases", "0",
                 "--system", f"alpha={alpha}", "--system", f"beta={beta}", "--per-packet", "6"])  # fmt: skip
    assert code == 0
    return root / "p"


def test_packets_are_blind_and_the_key_maps_every_answer(panel):
    key = json.loads((panel / "key.json").read_text())
    assert sorted(set(key.values())) == ["alpha", "beta", "reference"]
    assert len(key) == 9  # three cases, three systems each
    packets = sorted((panel / "packets").glob("packet-*.md"))
    assert len(packets) == 2  # six answers a packet: two cases, then one
    text = "".join(p.read_text() for p in packets)
    for word in ("alpha", "beta", "reference"):
        assert word not in text.lower()  # nothing in a packet names a system
    assert "quickly checks" in text and "calmly checks" in text  # answers are shown as written
    assert "## The rubric" in text and "S (sensible)" in text
    assert "t-3/" in text and "raw text" in text  # a broken answer is shown raw, for an N
    assert "later seed" not in text  # only the first attempt per case is judged
    # letters are shuffled per case with a seeded rng: not the same order for every case
    orders = {tuple(key[f"{cid}/{letter}"] for letter in "ABC") for cid in NAMES}
    assert len(orders) > 1


def test_a_system_can_be_one_model_of_a_shared_outputs_file(tmp_path):
    from finetune.judge import load_outputs

    path = tmp_path / "both.jsonl"
    rows = [
        {"model": m, "case_id": "t-1", "raw": json.dumps(_purposes("Ana Ruiz", m))} for m in ("one", "two")
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert "two checks" in load_outputs(path, "b", "two")["t-1"].purposes[0]
    assert "one checks" in load_outputs(path, "a")["t-1"].purposes[0]  # no model: the first row
    assert load_outputs(path, "c", "three") == {}
    assert main(["packets", "--panel", "x", "--root", str(tmp_path), "--system", f"c={path}#three"]) == 2


def test_tally_counts_labels_overall_and_agreement(panel):
    _judge_all(panel, {"reference": "S", "alpha": "W", "beta": "N"}, "judge-1", overall=4)
    _judge_all(panel, {"reference": "S", "alpha": "N", "beta": "N"}, "judge-2", overall=2)
    tally = tally_panel(panel)
    rows = tally["systems"]["all"]
    assert rows["reference"] == {"answers": 3, "S": 1.0, "W": 0.0, "N": 0.0, "overall": 3.0}
    assert rows["alpha"]["W"] == 0.5 and rows["alpha"]["N"] == 0.5
    assert rows["beta"]["N"] == 1.0
    assert tally["label_agreement"] == round(6 / 9, 3)  # the judges differ on alpha only


def test_tally_refuses_incomplete_or_malformed_judgements(panel, capsys):
    with pytest.raises(JudgingError, match="need two judges"):
        tally_panel(panel)
    _judge_all(panel, {"reference": "S", "alpha": "W", "beta": "N"}, "judge-1")
    bad = panel / "judgements" / "packet-01.judge-2.jsonl"
    good = (panel / "judgements" / "packet-01.judge-1.jsonl").read_text().splitlines()
    bad.write_text(
        good[0].replace('"S"', '"maybe"', 1).replace('"W"', '"maybe"', 1).replace('"N"', '"maybe"', 1) + "\n"
    )
    (panel / "judgements" / "packet-02.judge-2.jsonl").write_text(
        (panel / "judgements" / "packet-02.judge-1.jsonl").read_text()
    )
    with pytest.raises(JudgingError, match=r"packet-01.judge-2.jsonl:1: labels"):
        tally_panel(panel)
    bad.write_text(good[0] + "\n")
    with pytest.raises(JudgingError, match="answers not judged"):
        tally_panel(panel)
    bad.write_text("\n".join([*good, good[0]]) + "\n")
    with pytest.raises(JudgingError, match="judged twice"):
        tally_panel(panel)
    assert main(["tally", "--panel", "missing", "--root", str(panel.parent)]) == 2
    assert "missing" in capsys.readouterr().err


def test_the_tally_splits_public_cases_by_the_panel_s_own_record(tmp_path):
    test, alpha, beta = _write_inputs(tmp_path)
    public = tmp_path / "public.jsonl"
    public.write_text(json.dumps({"id": "case-x", "name": "Dee Kay", "description": "Guard, 30.", "situation": "A door is open."}) + "\n")  # fmt: skip
    for path, tag in ((alpha, "quickly"), (beta, "slowly")):
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        rows.append({"model": path.stem, "case_id": "case-x", "raw": json.dumps(_purposes("Dee Kay", tag))})
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    root = tmp_path / "judging"
    assert main(["packets", "--panel", "p", "--root", str(root), "--references", str(test), "--test-cases", "0",
                 "--public", str(public), "--system", f"alpha={alpha}", "--system", f"beta={beta}"]) == 0  # fmt: skip
    panel = root / "p"
    assert json.loads((panel / "panel.json").read_text())["public_cases"] == ["case-x"]
    _judge_all(panel, {"reference": "S", "alpha": "W", "beta": "N"}, "judge-1")
    _judge_all(panel, {"reference": "S", "alpha": "W", "beta": "N"}, "judge-2")
    systems = tally_panel(panel)["systems"]
    assert systems["public"]["alpha"] == {"answers": 1, "S": 0.0, "W": 1.0, "N": 0.0, "overall": 3.0}
    assert systems["test_split"]["alpha"]["answers"] == 3 and "reference" not in systems["public"]
