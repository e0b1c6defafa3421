"""Blind sense judging: packets of anonymous answers for two judges each, then a tally.

    daydream finetune judge packets --panel v4-pilot \\
        --system v3=runs/eval/v3/outputs.jsonl --system pilot=runs/eval/pilot/outputs.jsonl \\
        --references data/plain/test.jsonl --test-cases 30 --public finetune/data/public_cases.jsonl
    # each judge reads one packets/packet-NN.md and writes judgements/packet-NN.<judge>.jsonl
    daydream finetune judge tally --panel v4-pilot

Word-overlap metrics cannot tell a sensible purpose from the situation's words strung into
nonsense, so sense is judged by reading (``docs/judging.md`` has the rubric and the procedure).
Each case's answers, the hand-written references among them, stand side by side under letters
shuffled per case with a seeded rng; the key that maps letters to systems is written apart from
the packets. The tally gives each system's share of S / W / N purposes, its mean overall score,
and the label agreement between the two judges of each answer. Everything lives in
``finetune/eval/judging/<panel>/`` so anyone can recount.
"""

from __future__ import annotations

import json
import random
import statistics
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from characters import Case, load_case
from engine.atomic import write_text_atomic
from engine.prompt import build_user_message
from finetune.evaluate import load_eval_cases, loose_purposes

JUDGING_DIR = Path(__file__).resolve().parent / "eval" / "judging"
RUBRIC_PATH = Path(__file__).resolve().parents[1] / "docs" / "judging.md"
REFERENCE = "reference"
LABELS = ("S", "W", "N")
LETTERS = "ABCDEFGHIJ"


class JudgingError(ValueError):
    """Input that cannot be judged or tallied; the message names the file, line or field."""


@dataclass(frozen=True)
class Answer:
    """One system's first answer to one case: its three purposes, or the raw text it wrote."""

    case_id: str
    system: str
    purposes: tuple[str, str, str] | None
    raw: str


def rubric_text() -> str:
    """The rubric section of docs/judging.md, given to every judge word for word."""
    text = RUBRIC_PATH.read_text("utf-8")
    start = text.index("## The rubric")
    end = text.index("\n## ", start + 1)
    return text[start:end].strip()


def load_outputs(path: Path, system: str, model: str | None = None) -> dict[str, Answer]:
    """The first answer per case in a ``finetune.evaluate`` outputs.jsonl (later seeds are ignored).

    ``model`` keeps only that model's rows, for a file that holds several models' answers.
    """
    answers: dict[str, Answer] = {}
    try:
        lines = path.read_text("utf-8").splitlines()
    except FileNotFoundError:
        raise JudgingError(f"{path}: outputs file not found") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            case_id, raw = str(row["case_id"]), str(row["raw"])
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise JudgingError(f"{path}:{number}: not an outputs row ({err})") from None
        if model is not None and row.get("model") != model:
            continue
        if case_id not in answers:
            answers[case_id] = Answer(case_id, system, loose_purposes(raw), raw)
    return answers


def build_panel(
    cases: list[Case],
    answers: dict[str, dict[str, Answer]],
    *,
    seed: int,
    per_packet: int,
) -> tuple[list[list[dict[str, Any]]], dict[str, str]]:
    """Packets of cases (each a list of lettered answers) and the key ``case/letter -> system``.

    Every system must have answered every case it is judged on; a case one system lacks is left
    out for all, so the systems are always compared on the same cases.
    """
    packets: list[list[dict[str, Any]]] = [[]]
    key: dict[str, str] = {}
    load = 0
    for case in cases:
        cid = case.id or ""
        systems = sorted(s for s in answers if cid in answers[s])
        if len(systems) < 2:
            continue
        rng = random.Random(f"{seed}:{cid}")  # a shuffle per case, stable when cases are added
        rng.shuffle(systems)
        lettered = []
        for letter, system in zip(LETTERS, systems, strict=False):
            key[f"{cid}/{letter}"] = system
            answer = answers[system][cid]
            lettered.append({"letter": letter, "purposes": answer.purposes, "raw": answer.raw})
        if load and load + len(lettered) > per_packet:
            packets.append([])
            load = 0
        packets[-1].append({"case": case, "answers": lettered})
        load += len(lettered)
    return [p for p in packets if p], key


def render_packet(packet: list[dict[str, Any]], number: int) -> str:
    """The markdown a judge reads: the rubric, the reply format, then every case and its answers."""
    n_answers = sum(len(item["answers"]) for item in packet)
    lines = [
        f"# Judging packet {number:02d}: {len(packet)} cases, {n_answers} answers",
        "",
        rubric_text(),
        "",
        "## How to answer",
        "",
        "Judge every answer below, one JSON line per answer, in this form:",
        '`{"answer": "<case>/<letter>", "labels": ["S","W","N"], "overall": 3}`',
        "(labels in the order purpose_a, purpose_b, purpose_c; overall 1-5). An answer that is not",
        "three readable purposes gets N for each missing or garbled purpose and overall 1.",
        "Judge each answer on its own merits against the rubric; the answers to a case come from",
        "different writers in a random order.",
        "",
    ]
    for item in packet:
        case: Case = item["case"]
        lines += [
            f"## Case `{case.id}`",
            "",
            "```",
            build_user_message(case.profile, case.situation),
            "```",
            "",
        ]
        for answer in item["answers"]:
            lines.append(f"**{case.id}/{answer['letter']}**")
            if answer["purposes"] is None:
                lines.append(f"- (not three purposes; raw text) {answer['raw'][:600]}")
            else:
                lines += [f"- {tag}: {text}" for tag, text in zip("abc", answer["purposes"], strict=True)]
            lines.append("")
    return "\n".join(lines)


def write_panel(
    panel_dir: Path, packets: list[list[dict[str, Any]]], key: dict[str, str], meta: dict[str, Any]
) -> list[Path]:
    """packets/packet-NN.md (for judges), key.json (never for judges) and panel.json (how it was made)."""
    paths = []
    for number, packet in enumerate(packets, start=1):
        path = panel_dir / "packets" / f"packet-{number:02d}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, render_packet(packet, number) + "\n")
        paths.append(path)
    answers = {f"{item['case'].id}/{a['letter']}": number for number, p in enumerate(packets, 1) for item in p for a in item["answers"]}  # fmt: skip
    write_text_atomic(panel_dir / "key.json", json.dumps(key, indent=1, sort_keys=True) + "\n")
    write_text_atomic(
        panel_dir / "panel.json",
        json.dumps({**meta, "packets": len(packets), "answers": answers}, indent=1, sort_keys=True) + "\n",
    )
    (panel_dir / "judgements").mkdir(exist_ok=True)
    return paths


def load_judgements(path: Path, expected: set[str]) -> dict[str, tuple[tuple[str, str, str], int]]:
    """One judge's lines: answer -> (labels, overall); every expected answer exactly once."""
    out: dict[str, tuple[tuple[str, str, str], int]] = {}
    for number, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path.name}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise JudgingError(f"{where}: invalid JSON ({err.msg})") from None
        if not isinstance(row, dict):
            raise JudgingError(f"{where}: expected an object")
        answer, labels, overall = row.get("answer"), row.get("labels"), row.get("overall")
        if answer not in expected:
            raise JudgingError(f"{where}: answer {answer!r} is not in this packet")
        if answer in out:
            raise JudgingError(f"{where}: answer {answer!r} is judged twice")
        if not isinstance(labels, list) or len(labels) != 3 or any(label not in LABELS for label in labels):
            raise JudgingError(f"{where}: labels must be three of S, W, N, got {labels!r}")
        if not isinstance(overall, int) or isinstance(overall, bool) or not 1 <= overall <= 5:
            raise JudgingError(f"{where}: overall must be an integer 1-5, got {overall!r}")
        out[answer] = ((labels[0], labels[1], labels[2]), overall)
    missing = expected - set(out)
    if missing:
        raise JudgingError(f"{path.name}: {len(missing)} answers not judged, e.g. {sorted(missing)[0]}")
    return out


def tally_panel(panel_dir: Path) -> dict[str, Any]:
    """Per system: S/W/N shares over every purpose and judge, mean overall, answers; and agreement."""
    try:
        key: dict[str, str] = json.loads((panel_dir / "key.json").read_text("utf-8"))
        meta = json.loads((panel_dir / "panel.json").read_text("utf-8"))
    except FileNotFoundError as err:
        raise JudgingError(
            f"{panel_dir}: {Path(err.filename or '').name} missing; run `judge packets` first"
        ) from None
    by_packet: dict[int, set[str]] = {}
    for answer, number in meta["answers"].items():
        by_packet.setdefault(int(number), set()).add(answer)
    labels: dict[str, list[tuple[str, str, str]]] = {}
    overall: dict[str, list[int]] = {}
    agree = total = 0
    for number, expected in sorted(by_packet.items()):
        files = sorted((panel_dir / "judgements").glob(f"packet-{number:02d}.*.jsonl"))
        if len(files) < 2:
            raise JudgingError(f"packet-{number:02d}: {len(files)} judgement files, need two judges")
        judged = [load_judgements(f, expected) for f in files]
        for answer in expected:
            for one in judged:
                labels.setdefault(answer, []).append(one[answer][0])
                overall.setdefault(answer, []).append(one[answer][1])
            first, second = judged[0][answer][0], judged[1][answer][0]
            agree += sum(a == b for a, b in zip(first, second, strict=True))
            total += 3
    public = set(meta.get("public_cases", []))  # the rest came from the test split

    def set_of(answer: str) -> str:
        return "public" if answer.rsplit("/", 1)[0] in public else "test_split"

    systems: dict[str, dict[str, Any]] = {}
    for set_name in ("all", "test_split", "public"):
        for system in sorted(set(key.values())):
            answers = [a for a, s in key.items() if s == system and set_name in ("all", set_of(a))]
            counts = Counter(label for a in answers for one in labels[a] for label in one)
            n = sum(counts.values())
            if not answers:
                continue
            systems.setdefault(set_name, {})[system] = {
                "answers": len(answers),
                **{label: round(counts[label] / n, 3) for label in LABELS},
                "overall": round(statistics.fmean(x for a in answers for x in overall[a]), 2),
            }
    return {
        "panel": panel_dir.name,
        "judges_per_answer": 2,
        "label_agreement": round(agree / max(total, 1), 3),
        "systems": systems,
        "meta": {k: v for k, v in meta.items() if k not in ("answers", "public_cases")},
    }


def render_tally(tally: dict[str, Any]) -> str:
    """Markdown tables, one per case set."""
    lines = [
        f"# Judged sense: panel `{tally['panel']}`",
        "",
        f"Two blind judges per answer; label agreement {tally['label_agreement']}. "
        f"Made by: `{tally['meta'].get('command', '')}`",
        "",
    ]
    for set_name, systems in tally["systems"].items():
        lines += [f"## {set_name}", "", "| system | answers | sensible | weak | nonsense | overall (1-5) |",
                  "|---|---|---|---|---|---|"]  # fmt: skip
        for system, row in sorted(systems.items(), key=lambda kv: -kv[1]["S"]):
            lines.append(f"| {system} | {row['answers']} | {row['S']:.2f} | {row['W']:.2f} | {row['N']:.2f} | {row['overall']:.2f} |")  # fmt: skip
        lines.append("")
    return "\n".join(lines)


def _load_cases(
    references: Path | None, public: Path | None, test_cases: int
) -> tuple[list[Case], dict[str, Answer], list[str]]:
    """The cases to judge (test split first, then public), the references, and the public case ids."""
    cases: list[Case] = []
    refs: dict[str, Answer] = {}
    if references:
        for case, reference in load_eval_cases(references, test_cases or None):
            cases.append(case)
            if reference is not None:
                refs[case.id or ""] = Answer(
                    case.id or "", REFERENCE, reference.purposes(), reference.model_dump_json()
                )
    n_test = len(cases)
    if public:
        for line in public.read_text("utf-8").splitlines():
            if line.strip():
                cases.append(load_case(json.loads(line)))
    return cases, refs, [c.id or "" for c in cases[n_test:]]


def main(argv: list[str] | None = None) -> int:
    """``judge packets`` builds a blind panel; ``judge tally`` counts its judgements."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="daydream finetune judge",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="action", required=True)
    pp = sub.add_parser("packets", help="build blind packets and their key")
    pp.add_argument("--panel", required=True, help="panel name: finetune/eval/judging/<panel>/")
    pp.add_argument("--system", action="append", default=[], metavar="NAME=OUTPUTS.jsonl[#MODEL]",
                    help="a system's answers (finetune.evaluate's outputs.jsonl, only MODEL's rows); repeat per system")  # fmt: skip
    pp.add_argument(
        "--references", type=Path, help="test split (messages JSONL) whose references are judged too"
    )
    pp.add_argument("--test-cases", type=int, default=30, help="first N test-split cases (0: all)")
    pp.add_argument("--public", type=Path, help="public cases JSONL (no references)")
    pp.add_argument("--per-packet", type=int, default=64, help="answers per packet (one judge's load)")
    pp.add_argument("--seed", type=int, default=0)
    pp.add_argument("--root", type=Path, default=JUDGING_DIR)
    pt = sub.add_parser("tally", help="count the judgements of a panel")
    pt.add_argument("--panel", required=True)
    pt.add_argument("--root", type=Path, default=JUDGING_DIR)
    args = parser.parse_args(argv)
    try:
        panel_dir = args.root / args.panel
        if args.action == "tally":
            tally = tally_panel(panel_dir)
            write_text_atomic(panel_dir / "tally.json", json.dumps(tally, indent=1) + "\n")
            report = render_tally(tally)
            write_text_atomic(panel_dir / "report.md", report + "\n")
            print(report)
            return 0
        if not args.system:
            parser.error("give at least one --system NAME=OUTPUTS.jsonl")
        cases, refs, public_ids = _load_cases(args.references, args.public, args.test_cases)
        answers: dict[str, dict[str, Answer]] = {REFERENCE: refs} if refs else {}
        for spec in args.system:
            name, sep, path = spec.partition("=")
            if not sep or not name or name == REFERENCE:
                raise JudgingError(
                    f"--system {spec!r}: expected NAME=PATH with a name other than {REFERENCE!r}"
                )
            path, _, model = path.partition("#")
            answers[name] = load_outputs(Path(path), name, model or None)
            if not answers[name]:
                raise JudgingError(
                    f"--system {spec!r}: no answers" + (f" from model {model!r}" if model else "")
                )
        packets, key = build_panel(cases, answers, seed=args.seed, per_packet=args.per_packet)
        if not packets:
            raise JudgingError("no case has answers from two or more systems")
        command = "daydream finetune judge " + " ".join(argv if argv is not None else sys.argv[1:])
        paths = write_panel(
            panel_dir,
            packets,
            key,
            {"command": command, "systems": sorted(answers), "seed": args.seed, "public_cases": public_ids},
        )
        print(
            f"{len(paths)} packets, {len(key)} answers in {panel_dir}/packets; key in {panel_dir / 'key.json'}"
        )
        return 0
    except JudgingError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
