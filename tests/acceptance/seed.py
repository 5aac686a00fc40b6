"""Reading the code blocks of docs/orchestration.md, the document pepper's API follows."""

from __future__ import annotations

import re
from pathlib import Path

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "orchestration.md"


def snippet(heading: str) -> str:
    """The first ```python block under the ``### heading`` of the document, unchanged."""
    text = DOCUMENT.read_text()
    section = re.search(rf"^### {re.escape(heading)}\n(.*?)(?=^### |\Z)", text, re.S | re.M)
    if section is None:
        raise LookupError(f"no section {heading!r} in {DOCUMENT}")
    block = re.search(r"```python\n(.*?)```", section.group(1), re.S)
    if block is None:
        raise LookupError(f"no python block in section {heading!r}")
    return block.group(1)


def snippets() -> list[tuple[str, str]]:
    """Every ```python block of the document, in order, with the ``###`` heading it sits under, unchanged."""
    text = DOCUMENT.read_text()
    found = []
    for match in re.finditer(r"^### (.+?)$|```python\n(.*?)```", text, re.S | re.M):
        if match.group(1) is not None:
            heading = match.group(1).strip()
        else:
            found.append((heading, match.group(2)))
    return found
