"""A diversity report of a generated dataset: histograms, distinct-n, most frequent phrases.

python -m finetune.data.report --n 3000 --seed 1 --out runs/data-report
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from finetune.data.generator import Example

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


def build_report(examples: Sequence[Example]) -> tuple[str, dict[str, Counter[str]]]:
    """Markdown text and the histograms behind it."""
    hists: dict[str, Counter[str]] = {
        "genre": Counter(e.meta["genre"] for e in examples),
        "occupation": Counter(e.meta["occupation"] for e in examples),
        "mbti": Counter(e.meta["mbti"] for e in examples),
        "setting": Counter(e.meta["setting"] for e in examples),
        "purpose kinds (a/b/c)": Counter(k for e in examples for k in e.meta["kinds"]),
        "purpose_a kind": Counter(e.meta["kinds"][0] for e in examples),
        "age band": Counter(f"{(e.meta['age'] // 10) * 10}s" for e in examples),
    }
    purposes = [p for e in examples for p in e.motivation.purposes()]
    lines = [f"# Dataset diversity ({len(examples)} examples)", ""]
    lines.append(f"- distinct-1 {distinct_n(purposes, 1):.3f}, distinct-2 {distinct_n(purposes, 2):.3f}, "
                 f"distinct-3 {distinct_n(purposes, 3):.3f} over {len(purposes)} purposes")  # fmt: skip
    lines.append(f"- unique purposes {len(set(purposes))} of {len(purposes)}; "
                 f"{len(hists['occupation'])} occupations, {len(hists['setting'])} settings, "
                 f"{len(hists['mbti'])} MBTI types")  # fmt: skip
    lines.append("")
    for name, counts in hists.items():
        lines.append(f"## {name} ({len(counts)} values)")
        top = counts.most_common(12)
        peak = top[0][1] if top else 1
        for value, count in top:
            lines.append(f"    {value[:28]:28} {count:5} {'#' * max(1, round(30 * count / peak))}")
        lines.append("")
    lines.append("## most frequent 4-word phrases in purposes")
    for phrase, count in frequent_phrases(purposes):
        lines.append(f"    {count:5}  {phrase}")
    return "\n".join(lines) + "\n", hists


def save_report(examples: Sequence[Example], out_dir: Path) -> Path:
    """Write report.md and histograms.png into ``out_dir``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    text, hists = build_report(examples)
    (out_dir / "report.md").write_text(text, "utf-8")
    keys = ["occupation", "mbti", "setting", "purpose kinds (a/b/c)"]
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
    """Generate examples and write their diversity report."""
    import argparse

    from finetune.data.generator import generate_examples

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("runs/data-report"))
    args = parser.parse_args()
    print(save_report(generate_examples(args.n, args.seed), args.out).read_text("utf-8"))


if __name__ == "__main__":
    main()
