"""The evaluation metrics on hand-made answers."""

from __future__ import annotations

import pytest

from finetune.metrics import distinctness, names_character


def test_distinctness_measures_the_actions_not_the_shared_name() -> None:
    grounded = (
        "Maya Lindqvist bakes the morning rye because customers are waiting.",
        "Maya Lindqvist calls the bank about the loan before it closes.",
        "Maya Lindqvist walks by the river to clear her head.",
    )
    assert distinctness(grounded, "Maya Lindqvist") == pytest.approx(1.0)
    assert distinctness(grounded) < 0.9  # counted as overlap, the name alone costs about 0.15
    same = ("Maya bakes bread.", "Maya bakes bread!", "maya BAKES bread")
    assert distinctness(same, "Maya") == 0.0
    partly = ("Maya bakes rye bread.", "Maya bakes sourdough bread.", "Maya visits Owen.")
    assert 0.0 < distinctness(partly, "Maya") < 1.0


def test_name_grounding_accepts_any_identifying_part_but_not_titles() -> None:
    assert names_character("Dr. Adeyemi checks the charts.", "Dr. Ruth Adeyemi")
    assert names_character("Ruth checks the charts.", "Dr. Ruth Adeyemi")
    assert not names_character("The doctor checks the charts.", "Dr. Ruth Adeyemi")
    assert not names_character("Dr. Smith checks the charts.", "Dr. Ruth Adeyemi")


def test_invented_names_flags_people_the_prompt_never_mentions() -> None:
    from finetune.metrics import invented_names

    prompt = "Name: Maya Lindqvist\\nKnows: Owen Price (friend)\\nWhen/where: Monday, Bakery"
    purposes = (
        "Maya asks Owen for the money on Monday.",
        "Maya bakes at the Bakery because Ethan is coming.",
        "Then Maya rests. Afterwards she calls Priya.",
    )
    assert invented_names(purposes, prompt) == {"Ethan", "Priya"}
    assert invented_names(purposes[:1], prompt) == set()


@pytest.mark.timeout(240)  # decodes every public case with two grammars
def test_eval_cli_runs_each_model_anchored_and_plain(tmp_path, monkeypatch) -> None:
    import json

    import engine.models
    from finetune.evaluate import main
    from tests.conftest import PUBLIC_CASES, FakeBackend, motivation_json

    loaded: list[tuple[str, dict]] = []

    def fake_load(spec: str, **options: object) -> FakeBackend:
        loaded.append((spec, options))
        return FakeBackend(default=motivation_json())

    monkeypatch.setattr(engine.models, "load_backend", fake_load)
    cases = tmp_path / "cases.jsonl"
    cases.write_text("".join(PUBLIC_CASES.read_text("utf-8").splitlines(keepends=True)[:2]), "utf-8")
    out = tmp_path / "eval"
    assert (
        main(
            [
                "--model",
                "m",
                "--cases",
                str(cases),
                "--case-samples",
                "1",
                "--grammar",
                "both",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert loaded == [("m", {}), ("m", {"anchor_name": False})]
    metrics = json.loads((out / "metrics.json").read_text("utf-8"))
    assert set(metrics) == {"m", "m/plain"}
    assert metrics["m"]["cases"]["cases"] == 2
