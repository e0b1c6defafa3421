"""The hand-written corpus: examples written one by one, grouped by genre, checked by rules.

    python -m finetune.data.corpus check                 # every file in finetune/data/corpus/
    python -m finetune.data.corpus check FILE [FILE ...]  # some files (corpus-wide rules still apply to them)
    python -m finetune.data.corpus stats

One JSON object per line in ``finetune/data/corpus/<genre>.jsonl``:

    {"id": "fantasy-001", "genre": "fantasy", "stakes": "urgent",
     "profile": {"name": ..., "description": ..., "background": ..., ...},
     "situation": {"context": ..., "time"?, "location"?, "nearby"?, "recent_events"?},
     "motivation": {"purpose_a": ..., "purpose_b": ..., "purpose_c": ...}}

The split is fixed by a hash of the id (about 15% test, 5% val): the test examples are never
trained on and are the main test set of the grounded-motivation metrics.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from characters import CaseError, Motivation, load_case, naming_problem
from engine.prompt import FIELD_BUDGET_CHARS, build_user_message
from finetune.data.generator import Example
from finetune.metrics import (
    STOCK_PHRASES,
    content_words,
    distinctness,
    grounded,
    invented_names,
    moment_text,
    near_duplicates,
    ngram_shares,
)

CORPUS_DIR = Path(__file__).resolve().parent / "corpus"
GENRES = (
    "modern", "office", "medical", "fantasy", "myth", "scifi", "postapoc", "historical", "western",
    "school", "family", "elderly", "horror", "mystery", "sport", "rural", "sea", "military",
)  # fmt: skip
STAKES = ("quiet", "everyday", "urgent", "crisis")
SPLIT_FRACTIONS = (0.80, 0.05, 0.15)  # train, val, test
PURPOSE_CHARS = (40, 190)
PURPOSE_WORDS = (8, 24)  # the plain style aims at 10-20 words a purpose, name included
# The plain style: literal actions with reasons from the prompt. These shapes are what a 135M model
# imitated without the logic behind them (judged nonsense), so a reference must never carry them.
PLAIN_STYLE_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("a generic 'since a <noun> is ...' reason",
     re.compile(r"\bsince (?:a|an|no|every|any) \w+(?: \w+)? (?:is|are|can|will|never|always|does|has|must|needs?)\b", re.I)),
    ("a comparison 'better than'", re.compile(r"\b(?:better|worse) than\b", re.I)),
    ("an absolute 'the only ...'", re.compile(r"\bthe only\b", re.I)),
    ("a simile 'like a ...'", re.compile(r"\b(?:like|as if|as though) (?:a|an)\b", re.I)),
    ("an aphorism 'nothing ...' / 'there is no ...'", re.compile(r"\b(?:nothing (?:\w+ )?(?:like|beats|matters)|there is no)\b", re.I)),
    ("a semicolon", re.compile(r";")),
)  # fmt: skip
MAX_NGRAM_SHARE = 0.02  # no 4-gram in more than 2% of the references
MIN_GROUNDED = 0.90  # share of purposes that reuse a content word of the situation
_ID = re.compile(r"^([a-z]+)-(\d{3,4})$")
_KEYS = {"id", "genre", "stakes", "profile", "situation", "motivation"}

FILLER = STOCK_PHRASES  # a reference must never carry them


class CorpusError(ValueError):
    """A corpus file that cannot be read; the message names the file and line."""


@dataclass
class CorpusCheck:
    """What the checker found: errors (the corpus is not usable), warnings, and figures."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when no rule is broken."""
        return not self.errors


def corpus_split(example_id: str) -> str:
    """train / val / test, fixed by a hash of the id."""
    bucket = int(hashlib.sha256(f"corpus:{example_id}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    if bucket < SPLIT_FRACTIONS[0]:
        return "train"
    if bucket < SPLIT_FRACTIONS[0] + SPLIT_FRACTIONS[1]:
        return "val"
    return "test"


def corpus_files(root: Path = CORPUS_DIR) -> list[Path]:
    """The corpus files, sorted by name."""
    return sorted(root.glob("*.jsonl"))


def situation_text(example: Example) -> str:
    """Everything the prompt says about the moment (see ``finetune.metrics.moment_text``)."""
    return moment_text(example.situation)


def parse_record(record: Any, where: str) -> Example:
    """One corpus record as an Example, or CorpusError naming ``where`` and the field."""
    if not isinstance(record, dict):
        raise CorpusError(f"{where}: expected an object")
    missing, extra = _KEYS - set(record), set(record) - _KEYS
    if missing or extra:
        parts = [f"missing {sorted(missing)}" if missing else "", f"unknown {sorted(extra)}" if extra else ""]
        raise CorpusError(f"{where}: keys: {' '.join(p for p in parts if p)}")
    if record["genre"] not in GENRES:
        raise CorpusError(f"{where}: genre: {record['genre']!r} is not one of {', '.join(GENRES)}")
    if record["stakes"] not in STAKES:
        raise CorpusError(f"{where}: stakes: {record['stakes']!r} is not one of {', '.join(STAKES)}")
    match = _ID.match(str(record["id"]))
    if not match or match.group(1) != record["genre"]:
        raise CorpusError(f"{where}: id: {record['id']!r} must be '<genre>-NNN' with its own genre")
    try:
        case = load_case({"id": record["id"], "profile": record["profile"], "situation": record["situation"]})
    except CaseError as err:
        raise CorpusError(f"{where}: {err}") from None
    try:
        motivation = Motivation.model_validate(record["motivation"])
    except Exception as err:  # pydantic's message names the purpose
        raise CorpusError(f"{where}: motivation: {err}".replace("\n", " ")) from None
    return Example(
        id=str(record["id"]),
        profile=case.profile,
        situation=case.situation,
        motivation=motivation,
        meta={"genre": record["genre"], "stakes": record["stakes"], "source": "corpus"},
    )


def load_corpus_file(path: Path) -> list[Example]:
    """Every example in one file; the first bad line raises CorpusError with its number."""
    out = []
    for number, line in enumerate(path.read_bytes().split(b"\n"), start=1):
        if not line.strip():
            continue
        where = f"{path.name}:{number}"
        try:
            record = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError:
            raise CorpusError(f"{where}: not UTF-8") from None
        except json.JSONDecodeError as err:
            raise CorpusError(f"{where}: invalid JSON ({err.msg} at column {err.colno})") from None
        out.append(parse_record(record, where))
    return out


def load_corpus(paths: list[Path] | None = None, split: str | None = None) -> list[Example]:
    """The corpus (or the given files), optionally one split of it."""
    examples = [ex for path in (paths or corpus_files()) for ex in load_corpus_file(path)]
    return [ex for ex in examples if split is None or corpus_split(ex.id) == split]


@functools.lru_cache(maxsize=1)
def reserved_names() -> frozenset[str]:
    """Names a corpus must not use: the example casts (the world tests) and the public eval cases."""
    import yaml

    root = Path(__file__).resolve().parents[2]
    names = set()
    for cast in (root / "characters" / "casts").glob("*.yaml"):
        data = yaml.safe_load(cast.read_text("utf-8")) or {}
        names |= {c["name"] for c in data.get("characters", []) if isinstance(c, dict) and "name" in c}
    public = root / "finetune" / "data" / "public_cases.jsonl"
    if public.exists():
        for line in public.read_text("utf-8").splitlines():
            if line.strip():
                record = json.loads(line)
                names.add(record.get("name") or record.get("profile", {}).get("name", ""))
    names.discard("")
    return frozenset(names)


def check_example(ex: Example, where: str, reserved: frozenset[str]) -> tuple[list[str], int]:
    """Errors for one example, and how many of its purposes are grounded in the situation."""
    errors = []
    name = ex.profile.name
    if name in reserved:
        errors.append(f"{where}: profile.name {name!r} belongs to a test cast or public case")
    budgets = {
        "profile.description": (ex.profile.description, FIELD_BUDGET_CHARS["description"]),
        "profile.background": (ex.profile.background, FIELD_BUDGET_CHARS["background"]),
        "situation.context": (ex.situation.context, FIELD_BUDGET_CHARS["context"]),
    }
    for key, (text, limit) in budgets.items():
        if len(text) > limit:
            errors.append(f"{where}: {key} is {len(text)} characters; the prompt keeps {limit}")
    prompt = build_user_message(ex.profile, ex.situation)
    moment = situation_text(ex)
    n_grounded = 0
    for key, purpose in zip(("purpose_a", "purpose_b", "purpose_c"), ex.motivation.purposes(), strict=True):
        low = purpose.lower()
        if name not in purpose:
            errors.append(f"{where}: {key} does not carry the exact name {name!r}")
        problem = naming_problem(purpose, name)
        if problem:
            errors.append(f"{where}: {key} {problem}")
        if not purpose.startswith(name):
            errors.append(f"{where}: {key} does not start with the name {name!r}")
        n_words = len(purpose.split())
        if not PURPOSE_WORDS[0] <= n_words <= PURPOSE_WORDS[1]:
            errors.append(f"{where}: {key} has {n_words} words (keep {PURPOSE_WORDS[0]}-{PURPOSE_WORDS[1]})")
        errors.extend(
            f"{where}: {key} uses {label}" for label, rule in PLAIN_STYLE_RULES if rule.search(purpose)
        )
        if not PURPOSE_CHARS[0] <= len(purpose) <= PURPOSE_CHARS[1]:
            errors.append(
                f"{where}: {key} is {len(purpose)} characters (keep {PURPOSE_CHARS[0]}-{PURPOSE_CHARS[1]})"
            )
        for phrase in FILLER:
            if phrase in low:
                errors.append(f"{where}: {key} uses the stock phrase {phrase!r}")
        n_grounded += grounded(purpose, moment, name)
    if n_grounded == 0:
        errors.append(f"{where}: no purpose reuses a word of the situation")
    strangers = invented_names(ex.motivation.purposes(), prompt)
    if strangers:
        errors.append(f"{where}: names no one in the prompt mentions: {', '.join(sorted(strangers))}")
    spread = distinctness(ex.motivation.purposes(), name)
    if spread < 0.5:
        errors.append(f"{where}: purposes overlap too much (distinctness {spread:.2f} < 0.5)")
    return errors, n_grounded


def check_corpus(paths: list[Path] | None = None) -> CorpusCheck:
    """Every rule over the given files (default: the whole corpus)."""
    report = CorpusCheck()
    reserved = reserved_names()
    examples: list[Example] = []
    where_of: list[str] = []
    for path in paths or corpus_files():
        for number, line in enumerate(path.read_bytes().split(b"\n"), start=1):
            if not line.strip():
                continue
            where = f"{path.name}:{number}"
            try:
                ex = parse_record(json.loads(line.decode("utf-8")), where)
                if ex.meta["genre"] != path.stem:
                    report.errors.append(
                        f"{where}: genre {ex.meta['genre']!r} belongs in {ex.meta['genre']}.jsonl"
                    )
                examples.append(ex)
                where_of.append(where)
            except UnicodeDecodeError:
                report.errors.append(f"{where}: not UTF-8")
            except json.JSONDecodeError as err:
                report.errors.append(f"{where}: invalid JSON ({err.msg} at column {err.colno})")
            except CorpusError as err:
                report.errors.append(str(err))
    ids = Counter(ex.id for ex in examples)
    for ex, where in zip(examples, where_of, strict=True):
        if ids[ex.id] > 1:
            report.errors.append(f"{where}: id {ex.id!r} is used {ids[ex.id]} times")
    grounded_total = 0
    for ex, where in zip(examples, where_of, strict=True):
        errors, n = check_example(ex, where, reserved)
        report.errors.extend(errors)
        grounded_total += n
    contexts = [ex.situation.context for ex in examples]
    for i, j, score in near_duplicates(contexts, threshold=0.6):
        report.errors.append(f"{where_of[j]}: situation is a near duplicate of {where_of[i]} ({score})")
    purposes = [p for ex in examples for p in ex.motivation.purposes()]
    owner = [where for where in where_of for _ in range(3)]
    for i, j, score in near_duplicates(purposes, threshold=0.75):
        if owner[i] != owner[j]:
            report.errors.append(f"{owner[j]}: a purpose nearly repeats one in {owner[i]} ({score})")
    counts, _ = ngram_shares(
        [ex.motivation.purposes() for ex in examples], [ex.profile.name for ex in examples]
    )
    n = len(examples)
    top = counts.most_common(20)
    for gram, count in top:
        if n >= 200 and count > MAX_NGRAM_SHARE * n:
            report.errors.append(
                f"4-gram {gram!r} is in {count} of {n} references (over {MAX_NGRAM_SHARE:.0%})"
            )
    share = grounded_total / max(3 * n, 1)
    if n and share < MIN_GROUNDED:
        report.errors.append(
            f"only {share:.1%} of purposes reuse a word of the situation (need {MIN_GROUNDED:.0%})"
        )
    report.figures = {
        "examples": n,
        "genres": dict(Counter(ex.meta["genre"] for ex in examples).most_common()),
        "stakes": dict(Counter(ex.meta["stakes"] for ex in examples).most_common()),
        "splits": dict(Counter(corpus_split(ex.id) for ex in examples).most_common()),
        "grounded_purposes": round(share, 4),
        "distinctness": round(sum(distinctness(ex.motivation.purposes(), ex.profile.name) for ex in examples) / max(n, 1), 4),
        "words_per_purpose": round(sum(len(p.split()) for p in purposes) / max(len(purposes), 1), 1),
        "situation_words": len(set().union(*(content_words(c) for c in contexts))) if contexts else 0,
        "top_4grams": [(g, c) for g, c in top],
    }  # fmt: skip
    return report


def main(argv: list[str] | None = None) -> int:
    """Check the corpus (exit 1 on any broken rule) or print its figures."""
    import argparse

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=("check", "stats"))
    parser.add_argument("files", nargs="*", type=Path)
    args = parser.parse_args(argv)
    report = check_corpus(args.files or None)
    for line in report.errors if args.command == "check" else []:
        print(f"error: {line}")
    figures = report.figures
    print(f"{figures['examples']} examples; splits {figures['splits']}; stakes {figures['stakes']}")
    print(f"genres {figures['genres']}")
    print(f"grounded purposes {figures['grounded_purposes']:.3f}; mean distinctness {figures['distinctness']:.3f}; "
          f"{figures['situation_words']} distinct situation words; {figures['words_per_purpose']} words a purpose")  # fmt: skip
    print("most shared 4-grams (references using each):")
    for gram, count in figures["top_4grams"][:10]:
        print(f"  {count:4}  {gram}")
    if args.command == "check":
        print(f"{len(report.errors)} errors" if report.errors else "corpus OK")
        return 1 if report.errors else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
