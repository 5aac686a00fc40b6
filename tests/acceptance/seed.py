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
