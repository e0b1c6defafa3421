"""Datasets on disk: messages JSONL for training, sharegpt JSON for LLaMA-Factory, splits.

python -m finetune.data.dataset --n 3000 --seed 1 --out data/gen1
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from characters import Case, CaseError, Motivation, build_seed_record, load_case
from engine.atomic import write_text_atomic
from engine.prompt import SYSTEM_MESSAGE, build_training_messages
from finetune.config import DataConfig
from finetune.data.generator import Example, generate_examples

SPLITS = ("train", "val", "test")


class DatasetError(ValueError):
    """A dataset file that cannot be read; the message names the file and the record."""


def split_of(example_id: str, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> str:
    """Deterministic split by a hash of the id (stable when examples are added or reordered)."""
    bucket = int(hashlib.sha256(example_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    if bucket < fractions[0]:
        return "train"
    if bucket < fractions[0] + fractions[1]:
        return "val"
    return "test"


def split_examples(examples: Iterable[Example]) -> dict[str, list[Example]]:
    """Examples by split name."""
    out: dict[str, list[Example]] = {name: [] for name in SPLITS}
    for ex in examples:
        out[split_of(ex.id)].append(ex)
    return out


def build_messages_record(ex: Example) -> dict[str, Any]:
    """The training record: chat messages from the shared prompt builder, plus provenance."""
    return {
        "id": ex.id,
        "messages": build_training_messages(ex.profile, ex.situation, ex.motivation),
        "profile": ex.profile.model_dump(mode="json", exclude_defaults=True),
        "situation": ex.situation.model_dump(mode="json", exclude_defaults=True),
        "meta": ex.meta,
    }


def case_from_record(record: dict[str, Any]) -> tuple[Case, Motivation]:
    """The case and reference answer stored in a messages record."""
    case = load_case({"id": record.get("id"), "profile": record["profile"], "situation": record["situation"]})
    return case, Motivation.model_validate_json(record["messages"][-1]["content"])


def examples_from_records(records: list[dict[str, Any]]) -> list[Example]:
    """Examples back from messages records (what ``build_messages_record`` wrote)."""
    out = []
    for record in records:
        case, motivation = case_from_record(record)
        out.append(Example(record["id"], case.profile, case.situation, motivation, record.get("meta") or {}))
    return out


def build_sharegpt_record(ex: Example) -> dict[str, Any]:
    """The seed's sharegpt shape: JSON user turn with seed keys, JSON assistant turn."""
    return {
        "id": ex.id,
        "system": SYSTEM_MESSAGE,
        "conversations": [
            {
                "from": "human",
                "value": json.dumps(build_seed_record(ex.profile, ex.situation), ensure_ascii=False),
            },
            {"from": "gpt", "value": ex.motivation.model_dump_json()},
        ],
    }


def save_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """Write records as JSONL atomically."""
    write_text_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def load_jsonl(path: Path) -> list[dict[str, Any]]:
    """Read a JSONL file; a bad line raises DatasetError naming the file and line."""
    rows = []
    for number, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise DatasetError(f"{path}:{number}: invalid JSON ({err.msg})") from None
    return rows


def save_dataset(examples: list[Example], out_dir: Path) -> dict[str, int]:
    """Split the examples and write every split (see ``save_splits``)."""
    return save_splits(split_examples(examples), out_dir)


def save_splits(splits: dict[str, list[Example]], out_dir: Path) -> dict[str, int]:
    """Write ``{split}.jsonl`` (messages) and ``{split}.sharegpt.json`` for each split."""
    counts = {}
    for name, items in splits.items():
        save_jsonl(out_dir / f"{name}.jsonl", (build_messages_record(ex) for ex in items))
        sharegpt = [build_sharegpt_record(ex) for ex in items]
        write_text_atomic(
            out_dir / f"{name}.sharegpt.json", json.dumps(sharegpt, ensure_ascii=False, indent=1)
        )
        counts[name] = len(items)
    return counts


def load_sharegpt(path: Path) -> list[tuple[Case, Motivation]]:
    """Import a sharegpt file in the seed's format (JSON user turn with seed keys)."""
    try:
        data = json.loads(path.read_text("utf-8"))
    except json.JSONDecodeError as err:
        raise DatasetError(f"{path}: invalid JSON at line {err.lineno}: {err.msg}") from None
    if not isinstance(data, list):
        raise DatasetError(f"{path}: expected a list of conversations")
    pairs = []
    for index, record in enumerate(data):
        where = f"{path}: record #{index + 1}"
        turns = record.get("conversations") if isinstance(record, dict) else None
        if not isinstance(turns, list):
            raise DatasetError(f"{where}: missing 'conversations' list")
        human = next((t.get("value") for t in turns if t.get("from") in ("human", "user")), None)
        gpt = next((t.get("value") for t in turns if t.get("from") in ("gpt", "assistant")), None)
        if not isinstance(human, str) or not isinstance(gpt, str):
            raise DatasetError(f"{where}: needs a human turn and a gpt turn")
        try:
            case = load_case(json.loads(human))
            motivation = Motivation.model_validate_json(gpt)
        except (json.JSONDecodeError, CaseError, ValueError) as err:
            raise DatasetError(f"{where}: {err}") from None
        pairs.append((case, motivation))
    return pairs


def build_imported_examples(path: Path) -> list[Example]:
    """Examples from a seed-format sharegpt file, with ids that name the file."""
    return [
        Example(id=f"import:{path.name}:{i}", profile=case.profile, situation=case.situation, motivation=mot,
                meta={"source": str(path)})
        for i, (case, mot) in enumerate(load_sharegpt(path))
    ]  # fmt: skip


def build_dataset(
    cfg: DataConfig, log: Callable[[str], None] = print
) -> tuple[dict[str, list[Example]], dict[str, Any]]:
    """Generate (and optionally distill) the examples, import extra files, write every split.

    Returns the examples by split (imports are in train) and a summary of what was written.
    """
    if cfg.generator == "situational":
        from finetune.data.situational import generate_situational

        examples = generate_situational(cfg.n, cfg.seed)
    else:
        examples = generate_examples(cfg.n, cfg.seed, ground_others=cfg.ground_others)
    summary: dict[str, Any] = {}
    out_dir = Path(cfg.out_dir)
    if cfg.teacher is not None:
        from finetune.data.teacher import distill

        def _progress(done: int, total: int) -> None:
            if done % 50 == 0 or done == total:
                log(f"teacher: {done}/{total}")

        examples, report = distill(
            examples, cfg.teacher, cache_path=out_dir / "teacher_cache.jsonl", progress=_progress
        )
        summary["teacher"] = report.as_dict()
        log(f"teacher: {summary['teacher']}")
    # imported files all go to train: they are someone else's data, and evaluating on them would
    # not measure what the generator's split measures
    extra = [ex for path in cfg.extra_sharegpt for ex in build_imported_examples(Path(path))]
    splits = split_examples(examples)
    splits["train"] += extra
    if cfg.corpus:
        from finetune.data.corpus import corpus_files, corpus_split, load_corpus

        generated_test = splits["test"]
        files = corpus_files(Path(cfg.corpus_dir)) if cfg.corpus_dir else None
        if cfg.corpus_dir and not files:
            raise DatasetError(f"data.corpus_dir: no <genre>.jsonl files in {cfg.corpus_dir}")
        written = load_corpus(files)
        for name in SPLITS:
            part = [ex for ex in written if corpus_split(ex.id) == name]
            splits[name] = splits[name] + part if name != "test" else part
        splits["gen_test"] = generated_test
        # two sources in one file: interleave them by a hash of the id, reproducibly
        splits["train"].sort(key=lambda ex: hashlib.sha256(ex.id.encode()).hexdigest())
        summary["corpus"] = len(written)
    summary["splits"] = save_splits(splits, out_dir)
    if extra:
        summary["imported"] = len(extra)
    return splits, summary


def main(argv: list[str] | None = None) -> int:
    """Generate a dataset and write its splits."""
    import argparse

    from finetune.config import TeacherSettings
    from finetune.data.teacher import TeacherError

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--ungrounded-others", action="store_true",
        help="let references name a related person the prompt leaves out (the shipped model's data)",
    )  # fmt: skip
    parser.add_argument("--generator", choices=("situational", "procedural"), default="situational",
                        help="situational: generator v2 (every purpose answers the moment); procedural: v1")  # fmt: skip
    parser.add_argument("--no-corpus", action="store_true", help="leave out the hand-written corpus")
    parser.add_argument("--import", dest="imports", action="append", default=[], metavar="SHAREGPT",
                        help="a seed-format sharegpt file to add to train (repeatable)")  # fmt: skip
    teacher = parser.add_argument_group("teacher distillation (any OpenAI-compatible chat endpoint)")
    teacher.add_argument("--teacher", metavar="URL", help="e.g. http://127.0.0.1:8080 or https://api.../v1")
    teacher.add_argument("--teacher-model", default="teacher")
    teacher.add_argument("--teacher-mode", choices=["write", "rewrite"], default="rewrite")
    teacher.add_argument(
        "--teacher-key-env", default="OPENAI_API_KEY", help="environment variable with the key"
    )
    teacher.add_argument("--teacher-workers", type=int, default=4)
    teacher.add_argument("--no-json-schema", action="store_true", help="do not send response_format")
    args = parser.parse_args(argv)
    settings = None
    if args.teacher:
        settings = TeacherSettings(
            url=args.teacher, model=args.teacher_model, mode=args.teacher_mode, api_key_env=args.teacher_key_env,
            workers=args.teacher_workers, json_schema=not args.no_json_schema,
        )  # fmt: skip
    cfg = DataConfig(
        n=args.n, seed=args.seed, out_dir=str(args.out), extra_sharegpt=args.imports, teacher=settings,
        ground_others=not args.ungrounded_others, generator=args.generator, corpus=not args.no_corpus,
    )  # fmt: skip
    try:
        _, summary = build_dataset(cfg, log=lambda line: print(line, file=sys.stderr))
    except (TeacherError, DatasetError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: {json.dumps(summary)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
