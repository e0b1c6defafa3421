"""``daydream decide``: answer a JSONL file of characters and situations, line by line."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from characters import Case, CaseError, load_case
from engine.atomic import write_text_atomic
from engine.models import ModelSpecError
from engine.request import Sampling
from engine.service import DecisionService
from engine.ticket import Ticket


def read_cases(path: Path) -> list[tuple[int, Case | None, str | None]]:
    """Each non-blank line as (line number, case or None, error or None).

    The file is read as bytes and each line decoded on its own, so one line that is not UTF-8
    is reported by number and the others are still answered.
    """
    rows: list[tuple[int, Case | None, str | None]] = []
    for number, raw in enumerate(path.read_bytes().splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            line = raw.decode("utf-8-sig" if number == 1 else "utf-8")  # a BOM may open the file
        except UnicodeDecodeError as err:
            rows.append((number, None, f"not UTF-8 ({err.reason} at byte {err.start + 1})"))
            continue
        try:
            record: Any = json.loads(line)
        except json.JSONDecodeError as err:
            rows.append((number, None, f"invalid JSON: {err.msg} at column {err.colno}"))
            continue
        except (ValueError, RecursionError) as err:  # json's digit limit, or nesting past the stack
            rows.append((number, None, f"invalid JSON: {type(err).__name__}: {err}"[:300]))
            continue
        try:
            rows.append((number, load_case(record), None))
        except CaseError as err:
            rows.append((number, None, str(err)))
    return rows


# Characters JSON leaves raw but Python's str.splitlines() (and some editors) break lines at: a
# model that copies one from the situation would otherwise split a record in two.
_LINE_BREAKS = {"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _jsonl_line(record: dict[str, Any]) -> str:
    text = json.dumps(record, ensure_ascii=False)
    for char, escape in _LINE_BREAKS.items():
        text = text.replace(char, escape)
    return text + "\n"


def write_jsonl_atomic(path: Path, records: list[dict[str, Any]]) -> None:
    """Write records as JSONL atomically."""
    write_text_atomic(path, "".join(_jsonl_line(r) for r in records))


def run_decide(input_path: str, out_path: str, *, model: str, seed: int, deadline_s: float | None) -> int:
    """Answer every good line; report bad ones by line number. Exit 1 if any line was bad."""
    source = Path(input_path)
    try:
        rows = read_cases(source)
    except FileNotFoundError:
        print(f"error: {source}: file not found", file=sys.stderr)
        return 2
    except OSError as err:  # a directory, no permission, a device that fails
        print(f"error: {source}: cannot read ({err.strerror or err})", file=sys.stderr)
        return 2
    bad = [(n, e) for n, c, e in rows if c is None]
    for number, error in bad:
        print(f"error: {source}:{number}: {error}", file=sys.stderr)
    try:
        service = DecisionService(model=model, sampling=Sampling(seed=seed), max_queue=max(len(rows), 1))
    except (ModelSpecError, FileNotFoundError, RuntimeError) as err:
        print(f"error: cannot load model {model!r}: {err}", file=sys.stderr)
        return 2
    tickets: dict[int, Ticket] = {}
    with service:
        for number, case, _ in rows:
            if case is not None:
                tickets[number] = service.submit(case.profile, case.situation, deadline_s=deadline_s)
        with tqdm(total=len(tickets), desc="deciding", unit="char", file=sys.stderr) as bar:
            finished = 0
            while finished < len(tickets):
                for _ in service.poll():
                    finished += 1
                    bar.update(1)
                if finished < len(tickets):
                    time.sleep(0.01)
        records: list[dict[str, Any]] = []
        for number, case, error in rows:
            if case is None:
                records.append({"line": number, "error": error})
                continue
            result = tickets[number].result()
            records.append({"id": case.id, "line": number, **result.to_record()})
        stats = service.stats()
    write_jsonl_atomic(Path(out_path), records)
    print(
        f"answered {len(tickets)} of {len(rows)} lines -> {out_path} "
        f"(sources {stats.by_source}, p50 {stats.p50_latency_ms:.0f} ms)",
        file=sys.stderr,
    )
    return 1 if bad else 0
