"""Steering the sampler inside a purpose: no second name, and no words an earlier purpose used.

Two habits of a small model that a game cannot show, handled where each token is chosen instead
of after the whole answer (a retry costs a whole decision):

- it repeats the character's name inside a purpose ("Njeri Gathoni writes ... the round Njeri
  needs"). Once a purpose's own name is written, a capitalised word that starts with the initial
  of a word of the name is banned until the purpose ends, unless it is a word of the prompt
  ("Nairobi" in the situation stays writable beside a character called "Njeri"). Banning only
  the name's own spelling is not enough: names come in small tokens (" N", "j", "eri") and a
  model denied "Nj" writes "Nijeri Guthoni" instead;
- its three purposes lean on the same words of the situation ("asks the student to hold his
  picture in the chair", three times over). Tokens that start a content word an earlier purpose
  used (after its name) lose ``penalty`` logits, so the second and third purposes reach for other
  parts of the moment: another person, another object, another need.

Both act on the raw logits before the grammar, so the grammar still decides what may follow; and
both are functions of the slot's own text, so cached-prefix, jump-forward and plain decoding still
choose the same tokens.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from characters.naming import name_words
from characters.words import STOPWORDS, stem

_KEY_END = b'":'  # a key ends here and its value follows; the schema's values are all strings
_WORDS = re.compile(r"[^\W\d_]+")
_NONE = np.zeros(0, dtype=np.int64)
_TRAILING_WORD = re.compile(r"[^\W\d_]+$")


def _is_word(text: str) -> bool:
    return bool(text) and text[0].isalpha() and all(c.isalpha() or c == "'" for c in text)


def _by_initial(table: dict[str, list[int]]) -> dict[str, list[tuple[str, list[int]]]]:
    out: dict[str, list[tuple[str, list[int]]]] = {}
    for text, ids in table.items():
        if text[0].isupper():
            lead = _WORDS.match(text)
            out.setdefault(text[0], []).append((lead.group() if lead else text, ids))
    return out


@dataclass
class SteerState:
    """One sequence's steering: its name, the words its earlier purposes used."""

    name: bytes
    words: tuple[str, ...]  # the words of the name a purpose must not write again
    initials: frozenset[str]  # their capital initials
    prompt_words: frozenset[str]  # the prompt's other words: writable even where they start the same
    ban_spaced: np.ndarray  # " Nj", " Ni", " Njeri": a new capitalised word with the name's initial
    ban_bare: np.ndarray  # the same straight after punctuation
    value_at: int = -2  # where the current key ends in the text (-1: none yet)
    active: bool = False  # inside a purpose, after its name
    current: set[int] = field(default_factory=set)  # word keys of the purpose being written
    used: set[int] = field(default_factory=set)  # word keys of the purposes before it
    penalized: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    tables: Steering | None = None  # the tables this state was made with (settings may change later)


class Steering:
    """The vocabulary tables steering needs; built once per model (a pass over the vocabulary)."""

    def __init__(self, n_vocab: int, piece: Callable[[int], bytes], penalty: float, ban_echo: bool) -> None:
        self.penalty = float(penalty)
        self.ban_echo = ban_echo
        self.key = np.full(n_vocab, -1, dtype=np.int64)  # token -> content-word key, -1 for none
        spaced: dict[str, list[int]] = {}
        bare: dict[str, list[int]] = {}
        keys: dict[str, int] = {}
        members: list[list[int]] = []
        for token in range(n_vocab):
            try:
                text = piece(token).decode("utf-8")
            except UnicodeDecodeError:
                continue
            if text.startswith(" ") and _is_word(text[1:]):
                word = text[1:]
                spaced.setdefault(word, []).append(token)
                low = word.lower()
                if len(low) >= 3 and low not in STOPWORDS:
                    key = keys.setdefault(stem(low), len(keys))
                    if key == len(members):
                        members.append([])
                    members[key].append(token)
                    self.key[token] = key
            elif _is_word(text):
                bare.setdefault(text, []).append(token)
        self._spaced, self._bare = spaced, bare
        self._members = [np.array(m, dtype=np.int64) for m in members]
        self._bare_words = np.array(sorted(t for ids in bare.values() for t in ids), dtype=np.int64)
        # capitalised word starts by initial, with their letters: " Nai" -> ("Nai", ids)
        self._spaced_initial = _by_initial(spaced)
        self._bare_initial = _by_initial(bare)

    def state(self, name: str, literal: bytes, prompt: str = "") -> SteerState:
        """A fresh state for one answer.

        ``literal`` is the name as it appears inside the JSON string; ``prompt`` the text the model
        was given, whose other words stay writable even where they start like the name.
        """
        words = tuple(w for w in name_words(name) if w) if self.ban_echo else ()
        own = set(words)
        prompt_words = frozenset(w for w in _WORDS.findall(prompt) if w not in own)
        protected = frozenset(w[:end] for w in prompt_words for end in range(1, len(w) + 1))
        initials = frozenset(w[0] for w in words if w[0].isupper())
        spaced: list[int] = []
        bare: list[int] = []
        for letter in initials:
            spaced += [
                t for lead, ids in self._spaced_initial.get(letter, ()) if lead not in protected for t in ids
            ]
            bare += [
                t for lead, ids in self._bare_initial.get(letter, ()) if lead not in protected for t in ids
            ]
        for word in words:  # a name word in lower case ("van", kept where it is all there is)
            if not word[0].isupper():
                spaced += self._spaced.get(word, [])
                bare += self._bare.get(word, [])
        return SteerState(
            literal,
            words,
            initials,
            prompt_words,
            np.array(sorted(set(spaced)), dtype=np.int64),
            np.array(sorted(set(bare)), dtype=np.int64),
            tables=self,
        )

    def _allowed_continuations(self, state: SteerState, partial: str) -> list[int]:
        """Tokens that carry ``partial`` on towards a word of the prompt (any other letters are banned)."""
        out: list[int] = []
        for word in state.prompt_words:
            if word.startswith(partial) and word != partial:
                rest = word[len(partial) :]
                for end in range(1, len(rest) + 1):
                    out += self._bare.get(rest[:end], [])
        return out

    def _enter(self, state: SteerState, text: bytearray, at: int) -> None:
        if state.current:
            state.used |= state.current
            state.current = set()
            if self.penalty:
                state.penalized = np.concatenate([self._members[k] for k in sorted(state.used)])
        state.value_at, state.active = at, False

    def apply(self, state: SteerState, text: bytearray, logits: np.ndarray) -> np.ndarray:
        """``logits`` steered for the token after ``text`` (the same array where nothing applies)."""
        at = text.rfind(_KEY_END)
        while at > 0 and text[at - 1] == 0x5C:  # \": inside a string is not the end of a key
            at = text.rfind(_KEY_END, 0, at)
        if at != state.value_at:
            self._enter(state, text, at)
        if at < 0:
            return logits
        value = bytes(text[at + len(_KEY_END) :]).lstrip(b" \t\n\r")  # '"a":"' or '"a": "'
        if not value.startswith(b'"'):
            return logits
        body = value[1:]
        if not state.active:
            state.active = state.name in body
        if not state.active:
            return logits
        if b'"' in body.replace(b"\\\\", b"").replace(b'\\"', b""):  # the purpose has ended
            return logits
        out = logits.copy()
        if state.penalized.size:
            out[state.penalized] -= self.penalty
        if state.words:
            out[state.ban_spaced] = -np.inf
            tail = body[-48:].decode("utf-8", "ignore")
            found = _TRAILING_WORD.search(tail)
            if found is None:  # a new word may start without a space, after "(" or a quote
                if not tail.endswith("'"):
                    out[state.ban_bare] = -np.inf
            elif found.group()[0] in state.initials:  # a capitalised word that starts like the name
                allowed = self._allowed_continuations(state, found.group())
                kept = out[allowed]
                out[self._bare_words] = -np.inf
                out[allowed] = kept
        return out

    def observe(self, state: SteerState, token: int) -> None:
        """Note a token chosen inside a purpose after its name (called after ``apply``)."""
        if state.active and token >= 0 and self.key[token] >= 0:
            state.current.add(int(self.key[token]))
