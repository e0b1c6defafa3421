"""Steering inside a purpose, on a made-up vocabulary: what is banned, penalised, and when."""

import numpy as np
import pytest

from engine.backends.steer import Steering

PIECES = [
    b" Njeri",  # 0: the name's first word
    b" Nje",  # 1: starts it
    b"ri",  # 2
    b" funding",  # 3
    b" fund",  # 4: same stem as " funding"
    b" round",  # 5
    b"Njeri",  # 6: the name with no space (after a quote or bracket)
    b" the",  # 7: a stopword, never penalised
    b'"',  # 8
    b" Gathoni",  # 9: the surname
    b" Ga",  # 10: too short a start to ban (could be "Gaza")
    b" Funding",  # 11: the same word capitalised
    b" writes",  # 12
    b" investor",  # 13
    b"\xff",  # 14: not UTF-8
    b" N",  # 15: one letter: could start anything
    b"j",  # 16
    b"eri",  # 17
    b"ief",  # 18
    b" Ni",  # 19: where a model denied "Nj" went ("Nijeri Guthoni")
    b"jeri",  # 20
    b" News",  # 21
]
NAME = "Njeri Gathoni"


def steering(penalty=3.0, ban=True):
    return Steering(len(PIECES), PIECES.__getitem__, penalty, ban)


def run(steer, state, text):
    return steer.apply(state, bytearray(text.encode()), np.zeros(len(PIECES), dtype=np.float32))


def feed(steer, state, prefix, tokens):
    """Write ``prefix`` then the tokens, as the decoder would (apply, choose, observe)."""
    text = prefix
    run(steer, state, text)
    for token in tokens:
        run(steer, state, text)
        steer.observe(state, token)
        text += PIECES[token].decode()
    return text


def test_nothing_is_steered_before_the_name_of_a_purpose():
    steer = steering()
    state = steer.state(NAME, NAME.encode())
    for text in ('{"purpose_a', '{"purpose_a":"', '{"purpose_a":"Hands shaking, Njeri'):
        assert np.all(run(steer, state, text) == 0.0), text


def test_after_the_name_a_new_word_of_the_name_is_banned():
    steer = steering()
    state = steer.state(NAME, NAME.encode())
    out = run(steer, state, '{"purpose_a":"Njeri Gathoni writes to')
    # " Njeri", " Nje", " Gathoni", " Ga", " N", " Ni", " News": capitalised, with the name's initials
    assert np.isneginf(out[[0, 1, 9, 10, 15, 19, 21]]).all()
    assert out[2] == 0.0 and out[12] == 0.0  # "ri" continues "to"; lower-case words are free
    assert out[6] == 0.0  # no-space "Njeri" straight after a letter continues that word: allowed
    after_quote = run(steer, state, '{"purpose_a":"Njeri Gathoni writes to (')
    assert np.isneginf(after_quote[6])


def test_a_word_started_with_the_name_initial_can_only_become_a_word_of_the_prompt():
    steer = steering()
    state = steer.state(NAME, NAME.encode())
    after_n = run(steer, state, '{"purpose_a":"Njeri Gathoni writes to N')
    assert np.isneginf(after_n[[2, 16, 17, 18, 20]]).all()  # "Nri", "Nj", "Neri", "Nief", "Njeri"
    state = steer.state(NAME, NAME.encode(), prompt="A letter came from Nief and the News desk.")
    after_n = run(steer, state, '{"purpose_a":"Njeri Gathoni writes to N')
    assert after_n[18] == 0.0  # on the way to "Nief", a word of the prompt
    assert np.isneginf(after_n[[16, 17]]).all()
    start = run(steer, state, '{"purpose_a":"Njeri Gathoni writes to')
    assert start[[15, 19, 21]].tolist() == [0.0, 0.0, 0.0]  # " N", " Ni", " News" start prompt words
    assert np.isneginf(start[0])  # " Njeri" starts none
    after_ni = run(steer, state, '{"purpose_a":"Njeri Gathoni writes to Ni')
    assert np.isneginf(after_ni[20])  # "Nijeri" is not "Nief"


def test_a_word_of_the_prompt_that_starts_like_the_name_stays_writable():
    steer = steering()
    state = steer.state(
        NAME, NAME.encode(), prompt="The courier from Gaza waits. Njeri Gathoni runs the stall."
    )
    out = run(steer, state, '{"purpose_a":"Njeri Gathoni writes to')
    assert out[10] == 0.0  # " Ga" may start "Gaza"
    assert np.isneginf(out[9])  # but the whole surname stays banned


def test_words_of_earlier_purposes_are_penalised_in_later_ones_only():
    steer = steering(penalty=3.0)
    state = steer.state(NAME, NAME.encode())
    text = feed(steer, state, '{"purpose_a":"Njeri Gathoni', [12, 7, 3, 5])
    inside_a = run(steer, state, text)
    assert np.all(inside_a[[3, 4, 5, 11, 12]] == 0.0)  # a purpose may repeat its own words
    text += '.","purpose_b":"'
    assert np.all(run(steer, state, text) == 0.0)  # the lead-in is free
    text += NAME
    out = run(steer, state, text)
    # "writes", "funding" (and " fund", " Funding": same stem) and "round" were used
    assert np.all(out[[3, 4, 5, 11, 12]] == -3.0)
    assert out[7] == 0.0 and out[13] == 0.0  # a stopword, and a word not used yet
    assert np.isneginf(out[0])


def test_a_closed_purpose_is_not_steered_and_an_escaped_quote_does_not_close_it():
    steer = steering()
    state = steer.state(NAME, NAME.encode())
    assert np.isneginf(run(steer, state, '{"purpose_a":"Njeri Gathoni says \\"no')[0])
    assert np.all(run(steer, state, '{"purpose_a":"Njeri Gathoni says no."') == 0.0)


@pytest.mark.parametrize(("penalty", "ban"), [(0.0, True), (3.0, False)])
def test_each_half_can_be_turned_off(penalty, ban):
    steer = steering(penalty, ban)
    state = steer.state(NAME, NAME.encode())
    text = feed(steer, state, '{"purpose_a":"Njeri Gathoni', [3]) + '","purpose_b":"' + NAME
    out = run(steer, state, text)
    assert np.isneginf(out[0]) == ban
    assert out[3] == -penalty


def test_json_written_with_spaces_and_escaped_quotes_is_followed():
    steer = steering()
    state = steer.state(NAME, NAME.encode())
    assert np.isneginf(run(steer, state, '{"purpose_a": "Njeri Gathoni writes to')[0])
    assert np.all(run(steer, state, '{"purpose_a": "Njeri Gathoni writes.", "purpose_b": ') == 0.0)
    # a quoted word with a colon inside the purpose does not start a new value
    assert np.isneginf(run(steer, state, '{"purpose_a":"Njeri Gathoni says \\"no\\": then')[0])
