"""Untrusted strings are escaped and cut before they reach a log line."""

from __future__ import annotations

from movseg_ros.safe_text import printable


def test_control_characters_become_visible_escapes() -> None:
    text = printable("rgb8\n[ERROR] [movseg]: INJECTED\r\x1b[31mred\x00\u2028")
    assert "\n" not in text and "\r" not in text and "\x1b" not in text and "\x00" not in text and "\u2028" not in text
    assert text == "rgb8\\n[ERROR] [movseg]: INJECTED\\r\\x1b[31mred\\x00\\u2028"


def test_long_strings_are_cut_and_say_how_much_was_cut() -> None:
    text = printable("x" * 10_000, limit=100)
    assert text == "x" * 100 + "...[9900 more characters]"
    assert printable("short") == "short"


def test_escaping_is_idempotent_and_bytes_are_decoded() -> None:
    once = printable("a\nb\\c")
    assert printable(once) == once
    assert printable(b"ok\xff\x1b") == "ok\ufffd\\x1b"


def test_an_escape_is_never_split_by_the_cut() -> None:
    text = printable("ab\n" * 50, limit=10)
    assert text.startswith("ab\\nab\\n") and text.split("...")[0].endswith(("\\n", "a", "b"))
    assert not text.split("...")[0].endswith("\\")
