from characters import CharacterProfile, Motivation, Situation
from engine.prompt import (
    FIELD_BUDGET_CHARS,
    PROMPT_VERSION,
    SYSTEM_MESSAGE,
    build_messages,
    build_training_messages,
    truncate_text,
)


def test_messages_hold_system_and_all_inputs(profile, situation):
    messages = build_messages(profile, situation)
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[0]["content"] == SYSTEM_MESSAGE
    user = messages[1]["content"]
    for text in (profile.name, profile.background, situation.context, "pay the rent", "Sam (coworker"):
        assert text in user
    assert PROMPT_VERSION == "1"


def test_build_is_pure_and_deterministic(profile, situation):
    assert build_messages(profile, situation) == build_messages(profile, situation)


def test_long_inputs_are_truncated_by_the_stated_rule():
    long_profile = CharacterProfile(name="Ann", description="word " * 119 + "end", background="memory " * 200)
    long_situation = Situation(context="event " * 190, recent_events=["x" * 200] * 8)
    user = build_messages(long_profile, long_situation)[1]["content"]
    lines = {line.split(":", 1)[0]: line.split(": ", 1)[1] for line in user.splitlines()}
    assert len(lines["Description"]) <= FIELD_BUDGET_CHARS["description"]
    assert len(lines["Background"]) <= FIELD_BUDGET_CHARS["background"]
    assert len(lines["Situation"]) <= FIELD_BUDGET_CHARS["context"]
    assert lines["Background"].endswith("…")
    assert lines["Recent"].count(";") == 3  # at most four events
    assert len(user) < 2200


def test_truncate_text_cuts_at_word_boundary():
    assert truncate_text("alpha beta gamma delta", 100) == "alpha beta gamma delta"
    cut = truncate_text("alpha beta gamma delta", 14)
    assert cut == "alpha beta…" and len(cut) <= 14
    assert truncate_text("a   b\n\nc", 10) == "a b c"


def test_training_messages_extend_inference_prompt(profile, situation):
    m = Motivation(purpose_a="Chloe works hard.", purpose_b="Chloe calls Sam.", purpose_c="Chloe paints.")
    train = build_training_messages(profile, situation, m)
    assert train[:2] == build_messages(profile, situation)
    assert train[2] == {"role": "assistant", "content": m.model_dump_json()}
    assert Motivation.model_validate_json(train[2]["content"]) == m
