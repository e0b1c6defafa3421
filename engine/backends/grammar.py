"""The Motivation grammar: llama.cpp's GBNF for the schema, tightened, and anchored to a name.

The GBNF comes from llama.cpp's JSON Schema converter, which the caller hands in (``to_gbnf``):
only ``engine.backends.llamacpp`` imports llama.cpp's package. Everything here is text.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable

from characters import LEAD_IN_MAX_WORDS, motivation_json_schema
from engine.backends.errors import LlamaCppError

# "Hands shaking, ": a phrase of 1-4 words of up to 10 letters each, only the first capitalised, then
# ", ". A longer lead-in let a garbled clause stand before the name ("... kitchen ands, Marco Bellini").
_LEAD_WORDS, _LEAD_WORD_CHARS = LEAD_IN_MAX_WORDS, 10
_LEAD_MAX = _LEAD_WORDS * (_LEAD_WORD_CHARS + 1) + 1


def _lead_initial(name: str) -> str:
    """The lead-in's first letter: a capital, but not the name's own initial.

    A lead-in that starts like the name is, in practice, the model misspelling the name before the
    grammar forces the real one ("Shenice Ward waves, Shanice Ward ..."); the words after the first
    are lower case for the same reason ("Mayan Tom Hutchins holds, Mayor Tom Hutchins ...").
    """
    initial = name.strip()[:1]
    if "A" <= initial <= "Z":
        ranges = [
            (lo, hi) for lo, hi in (("A", chr(ord(initial) - 1)), (chr(ord(initial) + 1), "Z")) if lo <= hi
        ]
        return "[" + "".join(lo if lo == hi else f"{lo}-{hi}" for lo, hi in ranges) + "]"
    return "[A-Z]"


def motivation_grammar(
    to_gbnf: Callable[[str], str], name: str | None = None, *, lead_in: bool = True
) -> str:
    """GBNF for the Motivation schema, made by ``to_gbnf`` (llama.cpp's JSON Schema converter).

    With ``name``, every purpose must carry the character's exact name: at its start, or after a
    short lead-in phrase and a comma ("Ever reserved, Brynn Blackthorn heads ..."), which are the
    two shapes the training data uses. A small model otherwise mangles names now and then
    ("Mayhew Tom Hutchins" for "Mayor Tom Hutchins"), and a game cannot show that. Length bounds
    still hold: the rest of the string is shortened by the name and the lead-in. With
    ``lead_in=False`` every purpose starts with the name (the plain style's only shape), so the
    name is forced tokens and nothing can stand before it.
    """
    text = to_gbnf(json.dumps(motivation_json_schema()))
    # JSON forbids raw control characters in strings; this converter's char rule lets them through
    loose, strict = 'char ::= [^"\\\\]', 'char ::= [^"\\\\\\x7F\\x00-\\x1F]'
    if loose in text:
        text = text.replace(loose, strict, 1)
    elif strict not in text:
        raise LlamaCppError("the grammar converter no longer writes the expected 'char' rule")
    if name is None or not name.strip():
        return text
    literal = json.dumps(name, ensure_ascii=False)[1:-1]  # as it appears inside the JSON string
    rules = [
        f'anchor-name ::= "{literal.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"',
        f"anchor-lead ::= {_lead_initial(name)} [a-z']{{0,{_LEAD_WORD_CHARS - 1}}} "
        f'(" " [a-z\']{{1,{_LEAD_WORD_CHARS}}}){{0,{_LEAD_WORDS - 1}}} ", "',
    ]
    for key, spec in motivation_json_schema()["properties"].items():
        rule = key.replace("_", "-")
        low = max(0, spec["minLength"] - len(name))
        high, high_lead = spec["maxLength"] - len(name), spec["maxLength"] - len(name) - _LEAD_MAX
        if lead_in and high_lead < low:
            raise ValueError(f"name {name!r} is too long for a {spec['maxLength']}-character purpose")
        lead = f" | anchor-lead anchor-name char{{{low},{high_lead}}}" if lead_in else ""
        anchored = f'{rule} ::= "\\"" (anchor-name char{{{low},{high}}}{lead}) "\\"" space'
        text, n = re.subn(rf"^{rule} ::= .*$", anchored.replace("\\", "\\\\"), text, flags=re.M)
        if n != 1:
            raise LlamaCppError(f"the grammar converter no longer writes a {rule!r} rule")
    return text.rstrip("\n") + "\n" + "\n".join(rules if lead_in else rules[:1]) + "\n"


@functools.lru_cache(maxsize=256)  # names come and go in a long-running world
def anchored_grammar(to_gbnf: Callable[[str], str], name: str, lead_in: bool = True) -> bytes | None:
    """The name-anchored grammar as bytes, or None where the name is too long to anchor."""
    try:
        return motivation_grammar(to_gbnf, name, lead_in=lead_in).encode()
    except ValueError:
        return None
