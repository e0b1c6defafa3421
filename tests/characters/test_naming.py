import pytest

from characters import lead_in, name_echo, name_tokens, naming_problem
from engine.validation import InvalidOutput, parse_motivation


def test_name_tokens_drop_titles_and_particles():
    assert name_tokens("Dr. Ruth Adeyemi") == {"ruth", "adeyemi"}
    assert name_tokens("Queen Isolde") == {"isolde"}
    assert name_tokens("Brynn of the Vale") == {"brynn", "vale"}
    assert name_tokens("Captain") == {"captain"}  # a title alone is still the name


@pytest.mark.parametrize(
    ("purpose", "name", "echo"),
    [
        ("Lin Yu may choose to share the news with Lin Yu since he trusts him.", "Lin Yu", True),
        ("Lin Yu shares the news with his mother.", "Lin Yu", False),
        ("Wendel Grast bolts the door of Grast's shop.", "Wendel Grast", True),
        ("Will Turner will row out before the tide turns.", "Will Turner", False),
        ("Grace Holloway pours the tea with grace.", "Grace Holloway", False),
        ("Mrs. Okonkwo asks Mrs. Adebayo for seeds.", "Mrs. Okonkwo", False),
        ("Mrs. Okonkwo tells the council that Okonkwo never gives up.", "Mrs. Okonkwo", True),
    ],
)
def test_name_echo(purpose, name, echo):
    assert name_echo(purpose, name) is echo


def test_lead_in_must_be_a_short_phrase_without_the_name():
    name = "Marco Bellini"
    assert lead_in("Marco Bellini greets the guests.", name) == ""
    assert lead_in("The guests arrive.", name) is None
    assert naming_problem("Hands shaking, Marco Bellini lights the oven.", name) is None
    garbled = "Marcelo Bellini heads to the kitchen ands, Marco Bellini greets the guests."
    assert "repeats the name" in (naming_problem(garbled, name) or "")
    long = "After a very long and tiring day at work, Marco Bellini sits down."
    assert "not a short phrase" in (naming_problem(long, name) or "")
    assert "part of the name" in (naming_problem("Young bellini, Marco Bellini waves.", name) or "")
    assert "repeats the name" in (naming_problem("Young Marco, Marco Bellini waves.", name) or "")
    assert "not a short phrase" in (naming_problem("and then, Marco Bellini waves.", name) or "")
    # a purpose without the name is the plain grammar's business, not a naming error
    assert naming_problem("He greets the guests.", name) is None


def test_engine_rejects_an_echo_at_the_naming_stage():
    text = (
        '{"purpose_a":"Lin Yu studies the calculus notes before the midterm.",'
        '"purpose_b":"Lin Yu calls his mother, since the dormitory is quiet.",'
        '"purpose_c":"Lin Yu may share the news with Lin Yu."}'
    )
    assert parse_motivation(text).purpose_a.startswith("Lin Yu")  # without a name: no naming check
    with pytest.raises(InvalidOutput) as err:
        parse_motivation(text, "Lin Yu")
    assert err.value.stage == "naming" and "purpose_c" in str(err.value)
