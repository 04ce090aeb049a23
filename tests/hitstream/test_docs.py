"""README.md and docs/*.md: every relative link reaches a file (and its heading), and the
README stays short enough that the quick start is not buried."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 400

# [text](target) and ![alt](target); a target ends at the first space or closing paren.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def prose(text: str) -> list[str]:
    """The page's lines outside fenced code blocks (links in code are not links)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line.lstrip()):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link shows its text
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading anchor of a Markdown page, numbered as GitHub numbers repeats."""
    seen: dict[str, int] = {}
    found = set()
    for line in prose(page.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def relative_links(page: Path) -> list[str]:
    """The links of a page that point inside the repository (no scheme, no mail)."""
    links = []
    for line in prose(page.read_text(encoding="utf-8")):
        # Inline code spans hold examples, not links.
        for target in LINK.findall(re.sub(r"`[^`]*`", "", line)):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):
                continue
            links.append(target)
    return links


def test_the_pages_exist() -> None:
    names = {page.name for page in PAGES}
    expected = {
        "README.md",
        "http-api.md",
        "query-api.md",
        "dashboard.md",
        "operations.md",
        "security.md",
        "guarantees.md",
        "performance.md",
    }
    assert expected <= names, expected - names


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(ROOT).as_posix())
def test_every_relative_link_reaches_a_file_and_its_heading(page: Path) -> None:
    broken = []
    for target in relative_links(page):
        path_part, _, fragment = target.partition("#")
        path = (page.parent / unquote(path_part)).resolve() if path_part else page
        if not path.exists():
            broken.append(f"{target}: no such file")
            continue
        if fragment and path.suffix == ".md" and fragment not in anchors(path):
            broken.append(f"{target}: no heading #{fragment} in {path.relative_to(ROOT)}")
    assert not broken, broken


def test_the_readme_links_every_reference_page() -> None:
    links = {target.partition("#")[0] for target in relative_links(ROOT / "README.md")}
    pages = {f"docs/{page.name}" for page in PAGES if page.parent.name == "docs"}
    assert pages <= links, pages - links


def test_the_readme_keeps_the_quick_start_near_the_top() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) < README_MAX_LINES, f"README.md: {len(lines)} lines; move reference to docs/"
    headings = [line for line in lines if line.startswith("## ")]
    assert headings[0].startswith("## Quick start"), headings


def test_the_readme_gives_the_commands_the_makefile_has() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for target in ("run", "test", "test-fast", "bench", "lint"):
        assert f"make {target}" in readme, target
        assert re.search(rf"^{re.escape(target)}:", makefile, re.MULTILINE), target


def test_slugs_follow_githubs_rule() -> None:
    assert slug("`POST /event`: one event") == "post-event-one-event"
    assert slug("Plausible's Events API") == "plausibles-events-api"
    assert slug("Running against servers, scaling consumers") == (
        "running-against-servers-scaling-consumers"
    )
    assert slug("Commands (the CLI)") == "commands-the-cli"
