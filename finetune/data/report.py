"""A report of any dataset: histograms, distinct-n, grounding, shared 4-grams, echoes, strangers.

python -m finetune.data.report --data data/default --out runs/data-report   # a built dataset
python -m finetune.data.report --n 3000 --seed 1 --out runs/data-report     # freshly generated
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.prompt import build_user_message
from finetune.data.generator import Example
from finetune.metrics import grounded, invented_names, moment_text, name_echo, near_duplicates, ngram_shares

_TOKEN = re.compile(r"[a-z']+")


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct n-grams over all n-grams (higher = more varied wording)."""
    grams: Counter[tuple[str, ...]] = Counter()
    for text in texts:
        tokens = _TOKEN.findall(text.lower())
        grams.update(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    total = sum(grams.values())
    return len(grams) / total if total else 0.0


def frequent_phrases(texts: Sequence[str], n: int = 4, top: int = 15) -> list[tuple[str, int]]:
    """The most frequent n-word phrases, names excluded by lower-casing only common words."""
    grams: Counter[str] = Counter()
    for text in texts:
        tokens = _TOKEN.findall(text.lower())
        grams.update(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    return grams.most_common(top)


def grounding_figures(examples: Sequence[Example]) -> dict[str, Any]:
    """How well the references answer their situations, and how much they lean on stock wording.

    - grounded_references: share of references whose purposes reuse a content word of the situation
      (every purpose that does counts in grounded_purposes)
    - top_4grams: the 20 most shared 4-grams (names taken out), with the share of references using each
    - name_echo: share of references with a purpose that repeats the character's name
    - invented_names: share of references naming someone the prompt never mentions
    - near_duplicates: pairs of references whose content words overlap by 80% or more
    """
    n = max(len(examples), 1)
    grounded_refs = grounded_purposes = echo = invented = 0
    for ex in examples:
        moment = moment_text(ex.situation)
        hits = [grounded(p, moment, ex.profile.name) for p in ex.motivation.purposes()]
        grounded_purposes += sum(hits)
        grounded_refs += any(hits)
        echo += any(name_echo(p, ex.profile.name) for p in ex.motivation.purposes())
        prompt = build_user_message(ex.profile, ex.situation)
        invented += bool(invented_names(ex.motivation.purposes(), prompt))
    counts, _ = ngram_shares(
        [ex.motivation.purposes() for ex in examples], [ex.profile.name for ex in examples]
    )
    refs = [" ".join(ex.motivation.purposes()) for ex in examples]
    return {
        "references": len(examples),
        "grounded_references": round(grounded_refs / n, 4),
        "grounded_purposes": round(grounded_purposes / (3 * n), 4),
        "top_4grams": [(gram, count, round(count / n, 4)) for gram, count in counts.most_common(20)],
        "max_4gram_share": round(counts.most_common(1)[0][1] / n, 4) if counts else 0.0,
        "name_echo": round(echo / n, 4),
        "invented_names": round(invented / n, 4),
        "near_duplicates": len(near_duplicates(refs, threshold=0.8)),
    }


def build_report(examples: Sequence[Example]) -> tuple[str, dict[str, Counter[str]]]:
    """Markdown text and the histograms behind it."""

    def meta(key: str, e: Example) -> str:
        value = e.meta.get(key)
        return "-" if value is None else str(value)

    hists: dict[str, Counter[str]] = {
        "source": Counter(meta("source", e) for e in examples),
        "genre": Counter(meta("genre", e) for e in examples),
        "stakes": Counter(meta("stakes", e) for e in examples),
        "moment": Counter(meta("moment", e) for e in examples),
        "occupation": Counter(meta("occupation", e) for e in examples),
        "mbti": Counter(meta("mbti", e) for e in examples),
        "setting": Counter(meta("setting", e) for e in examples),
        "purpose kinds (a/b/c)": Counter(k for e in examples for k in e.meta.get("kinds", ["-"] * 3)),
        "age band": Counter(
            f"{(int(e.meta['age']) // 10) * 10}s" if e.meta.get("age") is not None else "-" for e in examples
        ),
    }
    purposes = [p for e in examples for p in e.motivation.purposes()]
    figures = grounding_figures(examples)
    lines = [f"# Dataset report ({len(examples)} examples)", ""]
    lines.append(f"- distinct-1 {distinct_n(purposes, 1):.3f}, distinct-2 {distinct_n(purposes, 2):.3f}, "
                 f"distinct-3 {distinct_n(purposes, 3):.3f} over {len(purposes)} purposes")  # fmt: skip
    lines.append(f"- unique purposes {len(set(purposes))} of {len(purposes)}; "
                 f"{len(hists['occupation'])} occupations, {len(hists['setting'])} settings, "
                 f"{len(hists['mbti'])} MBTI types")  # fmt: skip
    lines.append(
        f"- grounded: {figures['grounded_references']:.1%} of references reuse a content word of the "
        f"situation ({figures['grounded_purposes']:.1%} of purposes)"
    )
    lines.append(
        f"- name echo {figures['name_echo']:.2%}; invented names {figures['invented_names']:.2%}; "
        f"near-duplicate reference pairs {figures['near_duplicates']}; the most shared 4-gram is in "
        f"{figures['max_4gram_share']:.2%} of references"
    )
    lines.append("")
    for name, counts in hists.items():
        if set(counts) == {"-"}:
            continue
        lines.append(f"## {name} ({len(counts)} values)")
        top = counts.most_common(12)
        peak = top[0][1] if top else 1
        for value, count in top:
            lines.append(f"    {value[:28]:28} {count:5} {'#' * max(1, round(30 * count / peak))}")
        lines.append("")
    lines.append("## the 20 most shared 4-grams (names taken out): references using each, and the share")
    for phrase, count, share in figures["top_4grams"]:
        lines.append(f"    {count:5}  {share:6.2%}  {phrase}")
    return "\n".join(lines) + "\n", hists


def save_report(examples: Sequence[Example], out_dir: Path) -> Path:
    """Write report.md and histograms.png into ``out_dir``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    text, hists = build_report(examples)
    (out_dir / "report.md").write_text(text, "utf-8")
    keys = ["occupation", "genre", "setting", "purpose kinds (a/b/c)"]
    fig, axes = plt.subplots(2, 2, figsize=(14, 9))
    for ax, key in zip(axes.flat, keys, strict=True):
        counts = hists[key].most_common(25 if key != "mbti" else 16)
        ax.bar(range(len(counts)), [c for _, c in counts])
        ax.set_xticks(range(len(counts)), [v[:16] for v, _ in counts], rotation=70, fontsize=7)
        ax.set_title(f"{key}: {len(hists[key])} values (top {len(counts)} shown)")
    fig.tight_layout()
    fig.savefig(out_dir / "histograms.png", dpi=100)
    plt.close(fig)
    return out_dir / "report.md"


def main() -> None:
    """Write the report of a built dataset (``--data DIR``) or of freshly generated examples."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, help="a dataset directory: reports on its train.jsonl")
    parser.add_argument("--split", default="train")
    parser.add_argument("--generator", choices=("situational", "procedural"), default="situational")
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("runs/data-report"))
    args = parser.parse_args()
    if args.data:
        from finetune.data.dataset import examples_from_records, load_jsonl

        examples = examples_from_records(load_jsonl(args.data / f"{args.split}.jsonl"))
    elif args.generator == "situational":
        from finetune.data.situational import generate_situational

        examples = generate_situational(args.n, args.seed)
    else:
        from finetune.data.generator import generate_examples

        examples = generate_examples(args.n, args.seed)
    print(save_report(examples, args.out).read_text("utf-8"))


if __name__ == "__main__":
    main()
