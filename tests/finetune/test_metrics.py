"""The shared text measures: grounding, stock rate, name echo, near duplicates."""

from finetune.metrics import (
    content_words,
    grounded,
    moment_text,
    near_duplicates,
    ngram_shares,
    stem,
    stock_rate,
)


def test_stems_and_content_words_meet_across_forms():
    assert stem("leaking") == stem("leaks") == stem("leaked") == "leak"
    assert stem("glass") == "glass" and stem("crisis") == "crisis"
    assert content_words("The espresso machine is leaking this morning") == {"espresso", "machine", "leak"}
    assert content_words("Lin Yu reads", drop={"lin", "yu"}) == {"read"}


def test_grounded_needs_a_word_of_the_moment_not_the_name():
    moment = "The espresso machine at the cafe is leaking and the rush starts soon."
    assert grounded("Chloe Martin tapes the leaking hose before the rush.", moment, "Chloe Martin")
    assert not grounded("Chloe Martin gets on with the work to keep things running.", moment, "Chloe Martin")
    # the name alone is not grounding, even when the situation mentions the character
    assert not grounded("Chloe Martin naps.", "Chloe is at the cafe.", "Chloe Martin")


def test_moment_text_covers_every_field():
    from characters import Situation

    s = Situation(context="A storm.", time="Mon 07:30", location="the pier", nearby=["Ana (sister)"],
                  recent_events=["the boat sank"])  # fmt: skip
    assert all(w in moment_text(s) for w in ("storm", "07:30", "pier", "Ana", "sank"))


def test_stock_rate_counts_a_case_once_and_ignores_names():
    stock = "gets on with the work to keep things running"
    groups = [
        [f"Ann {stock}.", "Ann fixes the leaking hose.", "Ann phones the manager."],
        [f"Bo {stock}.", "Bo bails the flooded cellar.", "Bo wakes the landlord."],
        [f"Cy {stock}.", "Cy chases the loose goat.", "Cy shuts the gate."],
        ["Di reads the letter twice.", "Di writes back at once.", "Di tells her sister."],
    ]
    names = ["Ann", "Bo", "Cy", "Di"]
    counts, total = ngram_shares(groups, names)
    assert total == 12 and counts["with the work to"] == 3
    assert abs(stock_rate(groups, names, share=0.2) - 3 / 12) < 1e-9
    # three samples of one case that keep its own words are not stock
    same_case = [["Ed mops the flooded cellar floor."] * 3 + ["Ed mops the flooded cellar floor again."] * 3]
    assert stock_rate(same_case + groups[3:], ["Ed", "Di"], share=0.2) == 0.0


def test_near_duplicates_pairs_overlapping_texts():
    texts = ["the red barn burns by the river", "the red barn burns by the river tonight", "a quiet library"]
    assert [(i, j) for i, j, _ in near_duplicates(texts, 0.8)] == [(0, 1)]
