"""Every doc link the peer tests give (an xfail's reason, a comment naming a difference, their
README) leads to a page and a heading that exist, so a renamed section cannot leave a
difference unexplained.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"docs/(?P<page>[\w-]+\.md)(?:#(?P<anchor>[\w-]+))?")
FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")


def slug(heading: str) -> str:
    """A heading's anchor, as mkdocs (Python-Markdown's toc) makes it."""
    text = unicodedata.normalize("NFKD", heading).encode("ascii", "ignore").decode()
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def anchors(page: Path) -> set[str]:
    """The anchors of a page's headings, outside code blocks."""
    found: set[str] = set()
    fenced = False
    for line in page.read_text().splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced and (heading := re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)):
            found.add(slug(heading[1]))
    return found


def test_doc_links_of_the_peer_tests_resolve() -> None:
    links = {
        (source.name, found["page"], found["anchor"])
        for source in sorted(Path(__file__).parent.glob("*.*"))
        if source.suffix in (".py", ".md")
        for found in LINK.finditer(source.read_text())
    }
    assert len(links) > 10  # the finder works
    broken = [
        f"{source}: docs/{page}#{anchor}"
        for source, page, anchor in sorted(links, key=str)
        if not (ROOT / "docs" / page).is_file()
        or (anchor is not None and anchor not in anchors(ROOT / "docs" / page))
    ]
    assert not broken, f"links to no page or heading: {broken}"
