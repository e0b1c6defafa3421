"""Every relative link in README.md and docs/*.md resolves: to a path in the repo, and a ``#anchor``
to a heading of the page it points at (GitHub's heading ids)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

pytestmark = pytest.mark.timeout(30)

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
# [text](target "title") and ![alt](target); the text may hold one level of brackets (a badge)
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
HTML_TARGET = re.compile(r"<(?:a|img)\b[^>]*?\b(?:href|src)=\"([^\"]+)\"", re.IGNORECASE)
HTML_ID = re.compile(r"<a\b[^>]*?\b(?:id|name)=\"([^\"]+)\"", re.IGNORECASE)
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def _prose_lines(text: str) -> list[tuple[int, str]]:
    """The page's lines outside fenced code blocks, numbered from 1."""
    lines, fenced = [], False
    for n, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append((n, line))
    return lines


def slug(heading: str) -> str:
    """The id GitHub gives a heading: its text, lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    text = re.sub(r"<[^>]+>", "", text).replace("`", "")
    text = re.sub(r"[*_~]{1,3}(\S(?:.*?\S)?)[*_~]{1,3}", r"\1", text)  # emphasis markers
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every id a link may target on ``page``: heading slugs (repeats get -1, -2, ...) and <a id>."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for _, line in _prose_lines(page.read_text("utf-8")):
        found.update(HTML_ID.findall(line))
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(page: Path) -> list[tuple[int, str]]:
    """(line, target) of every link, image and reference definition outside code."""
    out = []
    for n, line in _prose_lines(page.read_text("utf-8")):
        prose = INLINE_CODE.sub("", line)
        out += [(n, target) for target in INLINE_LINK.findall(prose)]
        out += [(n, target) for target in HTML_TARGET.findall(prose)]
        definition = REFERENCE_DEF.match(prose)
        if definition:
            out.append((n, definition.group(1)))
    return out


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    """Each relative link of ``page`` that does not resolve, as 'page:line: target (why)'."""
    problems = []
    for n, target in links(page):
        if SCHEME.match(target) or target.startswith("//"):
            continue  # an absolute URL: not this test's business
        where = f"{page.relative_to(root)}:{n}: {target}"
        path_part, _, anchor = target.partition("#")
        path_part = path_part.split("?", 1)[0]
        dest = (page.parent / path_part).resolve() if path_part else page.resolve()
        if path_part.startswith("/"):
            problems.append(f"{where} (an absolute path; link relative to the page)")
        elif not dest.is_relative_to(root.resolve()):
            problems.append(f"{where} (outside the repo)")
        elif not dest.exists():
            problems.append(f"{where} (no such file)")
        elif anchor and dest.suffix.lower() != ".md":
            problems.append(f"{where} (an anchor into a file that is not markdown)")
        elif anchor and anchor not in anchors(dest):
            problems.append(f"{where} (no heading with that anchor in {dest.relative_to(root.resolve())})")
    return problems


def test_the_pages_are_there():
    names = {page.relative_to(ROOT).as_posix() for page in PAGES}
    for name in ("README.md", "docs/judging.md", "docs/model.md", "docs/performance.md", "docs/serve.md"):
        assert name in names


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(page):
    assert broken_links(page) == []


def test_the_readme_links_into_the_docs():
    targets = {target.partition("#")[0] for _, target in links(ROOT / "README.md")}
    assert {"docs/serve.md", "docs/model.md", "docs/performance.md", "docs/design.md"} <= targets


def test_the_readme_keeps_its_commands_and_its_model_section():
    text = (ROOT / "README.md").read_text("utf-8")
    assert "make demo" in text and "make test" in text  # the README's two commands
    assert "the-default-model" in anchors(ROOT / "README.md")  # bench/quant.py and docs/model.md cite it


def test_github_heading_ids():
    assert slug("Any game engine over HTTP: `daydream serve`") == "any-game-engine-over-http-daydream-serve"
    assert slug("Setup and the llama.cpp build") == "setup-and-the-llamacpp-build"
    assert slug("vLLM, llama.cpp's server, Ollama") == "vllm-llamacpps-server-ollama"
    assert slug("The **default** model") == "the-default-model"
    assert slug("Why 2.2× is out of reach") == "why-22-is-out-of-reach"


def test_broken_links_and_anchors_are_reported(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "other.md").write_text("# Other\n\n## A part\n\n## A part\n", "utf-8")
    (tmp_path / "code.py").write_text("", "utf-8")
    page = tmp_path / "README.md"
    page.write_text(
        "# Top\n\n"
        "[ok](docs/other.md) [ok](docs/other.md#a-part) [ok](docs/other.md#a-part-1) [ok](#top)\n"
        "[ok](code.py) [web](https://example.com/x.md#nowhere) `[code](missing.md)`\n"
        "```\n[in a fence](missing.md)\n# not a heading\n```\n"
        "[gone](docs/missing.md) [bad anchor](docs/other.md#nope) [self](#not-a-heading)\n"
        "![img](docs/none.svg) [out](../outside.md) [anchor](code.py#L1)\n"
        "[ref]: docs/nothing.md\n",
        "utf-8",
    )
    found = broken_links(page, root=tmp_path)
    assert [line.split(": ", 1)[1].split(" (")[0] for line in found] == [
        "docs/missing.md",
        "docs/other.md#nope",
        "#not-a-heading",
        "docs/none.svg",
        "../outside.md",
        "code.py#L1",
        "docs/nothing.md",
    ]
