"""What an attempt wrote, as stored: chunks of text, the first and the last part of the stream kept.

A chunk records where it starts in the whole stream (``start``, in bytes); a gap between the end of
one chunk and the start of the next is what was cut to keep the log within its cap, shown as
``... N bytes cut ...``. The last chunk of an attempt is marked ``ended``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

#: The cap of one attempt's log unless ``task_log_limit`` says otherwise (1 MiB).
DEFAULT_LOG_LIMIT = 1024 * 1024


def cut_marker(cut: int) -> str:
    """The line standing for ``cut`` bytes left out of a log."""
    return f"\n... {cut} bytes cut ...\n"


@dataclass(frozen=True, slots=True)
class LogChunk:
    """One stored piece of an attempt's log."""

    attempt: int
    seq: int  #: its order within the attempt, from 0
    start: int  #: the byte of the whole stream it starts at
    size: int  #: its length in bytes (as written; its text may show replaced bytes)
    text: str
    at: float
    ended: bool = False  #: the attempt's last chunk: nothing more comes

    @classmethod
    def from_row(cls, row: Any) -> LogChunk:
        start = int(row["start_byte"])
        return cls(int(row["attempt"]), int(row["seq"]), start, int(row["end_byte"]) - start, row["body"],
                   float(row["at"]), bool(row["ended"]))  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {"attempt": self.attempt, "seq": self.seq, "start": self.start, "size": self.size, "text": self.text,
                "at": self.at, "ended": self.ended}  # fmt: skip

    @classmethod
    def from_dict(cls, data: Any) -> LogChunk:
        return cls(int(data["attempt"]), int(data["seq"]), int(data["start"]), int(data["size"]), str(data["text"]),
                   float(data["at"]), bool(data.get("ended", False)))  # fmt: skip


def render(chunks: Sequence[LogChunk], previous_end: int = 0) -> str:
    """The text of ``chunks`` (in order), with a cut marker wherever bytes are missing between two of them.
    ``previous_end``: where the text shown before these ended (so a gap right after it is marked too)."""
    parts: list[str] = []
    for chunk in chunks:
        if chunk.start > previous_end:
            parts.append(cut_marker(chunk.start - previous_end))
        parts.append(chunk.text)
        previous_end = max(previous_end, chunk.start + chunk.size)
    return "".join(parts)


@dataclass(frozen=True, slots=True)
class TaskLog:
    """One attempt's log: its chunks (``after`` a given seq, when asked for a part), and whether it ended."""

    task_id: str
    attempt: int
    chunks: tuple[LogChunk, ...]
    ended: bool
    previous_end: int = 0  #: where the chunk stored before these ends (asked for a part: ``from_seq``)
    from_seq: int = 0  #: the first seq asked for

    @property
    def text(self) -> str:
        """The log as text, ``... N bytes cut ...`` where its middle was left out."""
        return render(self.chunks, self.previous_end)

    @property
    def next_seq(self) -> int:
        """The seq to ask for next when following the log."""
        return self.chunks[-1].seq + 1 if self.chunks else self.from_seq

    def to_dict(self) -> dict[str, Any]:
        return {"task_id": self.task_id, "attempt": self.attempt, "ended": self.ended, "text": self.text,
                "next_seq": self.next_seq, "previous_end": self.previous_end, "from_seq": self.from_seq,
                "chunks": [c.to_dict() for c in self.chunks]}  # fmt: skip

    @classmethod
    def from_dict(cls, data: Any) -> TaskLog:
        return cls(str(data["task_id"]), int(data["attempt"]), tuple(LogChunk.from_dict(c) for c in data["chunks"]),
                   bool(data["ended"]), int(data.get("previous_end", 0)), int(data.get("from_seq", 0)))  # fmt: skip
