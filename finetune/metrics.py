"""Text measures shared by the data checks, the data report, the teacher and the evaluation.

One place for what "grounded", "stock", "name echo" and "invented name" mean, so a dataset is
judged by the same rules as the model trained on it. Pure functions over strings; no I/O.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

from characters import Situation
from characters.naming import TITLES, name_echo, name_tokens
from characters.words import STOPWORDS, stem

__all__ = [
    "STOCK_PHRASES",
    "STOPWORDS",
    "TITLES",
    "content_words",
    "distinctness",
    "grounded",
    "has_stock_phrase",
    "invented_names",
    "moment_text",
    "name_echo",
    "name_tokens",
    "names_character",
    "near_duplicates",
    "ngram_shares",
    "ngrams",
    "stem",
    "stock_ngrams",
    "stock_rate",
    "words",
]

_WORD = re.compile(r"[^\W\d_](?:[^\W\d_]|')*")  # letters of any script: "Tomás" is one word

# Stock phrases the first generator taught the model, which it then used whatever the situation.
STOCK_PHRASES = (
    "get on with the work", "gets on with the work", "getting on with the work", "keep things running",
    "keeps things running", "feel less alone", "more than anyone", "counting on", "will not do itself",
    "does every day", "always knows what to do", "deserves to know", "anything rash", "acting blindly",
    "prefers to be sure", "costly mistake", "how things develop", "gathers more information",
    "makes a list of options", "thinks it over carefully", "nobody can say", "slacked off",
    "would want to hear it first", "is all right", "the day's work", "as usual",
)  # fmt: skip


def has_stock_phrase(text: str) -> bool:
    """Whether ``text`` carries one of the first generator's stock phrases."""
    low = text.lower()
    return any(phrase in low for phrase in STOCK_PHRASES)


NOT_NAMES = frozenset(
    [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
        "god",
    ]
)
_CAPITALIZED = re.compile(r"(?<![.!?]\s)(?<!^)(?<!['’])\b([A-ZÀ-ÖØ-Þ][a-zß-öø-ÿ]{2,})\b")  # not "O'Neill"


def words(text: str) -> list[str]:
    """Lower-case word tokens, possessive 's dropped."""
    return [w[:-2] if w.endswith("'s") else w.rstrip("'") for w in _WORD.findall(text.lower())]


def content_words(text: str, drop: Iterable[str] = ()) -> set[str]:
    """Stems of the words that carry meaning: stopwords, short words and ``drop`` left out."""
    dropped = {stem(w) for w in drop} | set(drop)
    out = set()
    for word in words(text):
        if len(word) < 3 or word in STOPWORDS:
            continue
        s = stem(word)
        if s not in dropped and word not in dropped:
            out.add(s)
    return out


def names_character(purpose: str, name: str) -> bool:
    """Whether a purpose names the character (any identifying name token)."""
    found = {w.strip(".,;:!?'\"").lower() for w in purpose.replace("-", " ").split()}
    found |= {w[:-2] for w in found if w.endswith("'s")}
    return bool(found & name_tokens(name))


def moment_text(situation: Situation) -> str:
    """Everything a prompt says about the moment: context, time, place, who is near, recent events."""
    parts = [situation.context, situation.time or "", situation.location or ""]
    return " ".join([*parts, *situation.nearby, *situation.recent_events])


def grounded(purpose: str, situation_text: str, name: str = "") -> bool:
    """Whether a purpose reuses a content word of the situation (the name does not count)."""
    drop = name_tokens(name) if name else set()
    return bool(content_words(purpose, drop) & content_words(situation_text, drop))


def invented_names(purposes: Sequence[str], prompt_text: str) -> set[str]:
    """Capitalized words mid-sentence that the prompt never mentions: usually people the model made up."""
    known = set(words(prompt_text)) | {w.lower() for w in _WORD.findall(prompt_text.lower())}
    found = set()
    for purpose in purposes:
        for word in _CAPITALIZED.findall(purpose):
            if word.lower() not in known and word.lower() not in NOT_NAMES:
                found.add(word)
    return found


def distinctness(purposes: Sequence[str], name: str = "") -> float:
    """1 - mean pairwise Jaccard overlap of content words (1 = entirely different).

    The character's name is left out: every purpose must name the character, and counting that
    shared name as overlap would score a grounded answer as less distinct than an ungrounded one.
    """
    drop = name_tokens(name) if name else set()
    sets = [content_words(p, drop) for p in purposes]
    overlaps = []
    for i in range(len(sets)):
        for j in range(i + 1, len(sets)):
            union = sets[i] | sets[j]
            overlaps.append(len(sets[i] & sets[j]) / len(union) if union else 1.0)
    return 1.0 - sum(overlaps) / len(overlaps) if overlaps else 1.0


def ngrams(text: str, n: int = 4, drop: Iterable[str] = ()) -> set[str]:
    """The distinct word n-grams of ``text``, with the ``drop`` words (a name) taken out first."""
    gone = set(drop)
    tokens = [w for w in words(text) if w not in gone]
    return {" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def ngram_shares(
    groups: Sequence[Sequence[str]], names: Sequence[str], n: int = 4
) -> tuple[Counter[str], int]:
    """How many groups use each n-gram, and the number of texts in all.

    A group is the texts of one case (its purposes, over all its samples); an n-gram counts once
    per group, so a case sampled three times that keeps its own situation's words is not "stock".
    The case's name tokens are taken out first.
    """
    counts: Counter[str] = Counter()
    total = 0
    for texts, name in zip(groups, names, strict=True):
        drop = name_tokens(name) | {w.strip(".'").lower() for w in name.split()}
        seen: set[str] = set()
        for text in texts:
            seen |= ngrams(text, n, drop)
            total += 1
        counts.update(seen)
    return counts, total


def stock_ngrams(groups: Sequence[Sequence[str]], names: Sequence[str], share: float = 0.05) -> set[str]:
    """4-grams found in more than ``share`` of all the texts (counted once per case)."""
    counts, total = ngram_shares(groups, names)
    return {gram for gram, count in counts.items() if count > share * total}


def stock_rate(groups: Sequence[Sequence[str]], names: Sequence[str], share: float = 0.05) -> float:
    """Share of texts that contain a stock 4-gram (see ``stock_ngrams``)."""
    stock = stock_ngrams(groups, names, share)
    hits = total = 0
    for texts, name in zip(groups, names, strict=True):
        drop = name_tokens(name) | {w.strip(".'").lower() for w in name.split()}
        for text in texts:
            total += 1
            hits += bool(ngrams(text, 4, drop) & stock)
    return hits / total if total else 0.0


def near_duplicates(texts: Sequence[str], threshold: float = 0.8) -> list[tuple[int, int, float]]:
    """Pairs of texts whose content-word sets overlap by at least ``threshold`` (Jaccard).

    An inverted index keeps this near-linear for thousands of texts.
    """
    sets = [content_words(t) for t in texts]
    index: dict[str, list[int]] = {}
    pairs = []
    for i, s in enumerate(sets):
        candidates: Counter[int] = Counter()
        for word in s:
            for j in index.get(word, ()):
                candidates[j] += 1
        for j, shared in candidates.items():
            union = len(s | sets[j])
            if union and shared / union >= threshold:
                pairs.append((j, i, round(shared / union, 3)))
        for word in s:
            index.setdefault(word, []).append(i)
    return pairs
