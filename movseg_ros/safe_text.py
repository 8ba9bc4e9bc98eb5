"""Text that came from outside (a message field, a file name, a file's contents) made safe to log.

Control characters would let a publisher forge log lines (a newline) or drive a terminal (ANSI
escapes), and an unbounded string floods the log; `printable` escapes the one and cuts the other.
"""

from __future__ import annotations

from typing import Any

DEFAULT_LIMIT = 120  # characters kept of one untrusted string


def printable(value: Any, limit: int = DEFAULT_LIMIT) -> str:
    """`value` as text with control characters shown as escapes (\\n, \\x1b, \\u2028), cut to `limit`
    characters plus a note of how much was cut. Idempotent on its own output, so wrapping twice is safe."""
    text = value.decode("utf-8", "replace") if isinstance(value, (bytes, bytearray)) else str(value)
    out: list[str] = []
    size = 0
    for i, ch in enumerate(text):
        piece = _escape(ch)
        if size + len(piece) > limit:
            return "".join(out) + f"...[{len(text) - i} more characters]"
        out.append(piece)
        size += len(piece)
    return "".join(out)


def _escape(ch: str) -> str:
    if ch.isprintable() or ch == " ":
        return ch
    escaped = repr(ch)[1:-1]  # '\n', '\x1b', '\u2028'
    return escaped if escaped != ch else f"\\u{ord(ch):04x}"
