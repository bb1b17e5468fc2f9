"""Showing untrusted text (names, scope keys and values, platform answers) without letting it steer
the terminal or a pull-request comment.

A manifest from a pull request, or a value a platform returns, may carry an ANSI escape (recolour,
hide, rewrite the screen), a carriage return (overwrite the line it is on), NUL, or a bidi override
(show ``evil`` as ``live``). Every output path shows such characters as visible ``\\uXXXX`` escapes
(valid inside JSON strings too, so machine output stays parseable).
"""
from __future__ import annotations

import html
import re

# C0 controls but TAB and LF, DEL and C1, bidi embeddings/overrides/isolates and marks, BOM,
# line/paragraph separators (some terminals and editors break lines at them)
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]")
# the only escape sequences the tool itself writes: colours and bold from click.style
_SGR = re.compile(r"\x1b\[[0-9;]*m")


def _escape_one(m: re.Match[str]) -> str:
    return f"\\u{ord(m.group()):04x}"


def escape(text: str) -> str:
    """TEXT with every control, bidi and invisible-format character shown as ``\\uXXXX``."""
    return _UNSAFE.sub(_escape_one, text) if _UNSAFE.search(text) else text


def escape_keeping_colour(text: str) -> str:
    """Like :func:`escape`, but the tool's own colour sequences survive (content is escaped before
    it is styled; this is the second line of defence at the terminal)."""
    if not _UNSAFE.search(text):
        return text
    out, pos = [], 0
    for m in _SGR.finditer(text):
        out.append(escape(text[pos:m.start()]))
        out.append(m.group())
        pos = m.end()
    out.append(escape(text[pos:]))
    return "".join(out)


def fence_for(text: str, char: str = "`") -> str:
    """A Markdown code fence longer than any run of CHAR in TEXT, so TEXT cannot close it."""
    longest = max((len(r) for r in re.findall(re.escape(char) + "+", text)), default=0)
    return char * max(3, longest + 1)


def html_text(text: str) -> str:
    """TEXT safe in Markdown outside a code block: HTML-significant and Markdown-active characters
    escaped, so a name cannot open a tag, close ``<details>``, or start a code span or link."""
    escaped = html.escape(escape(text), quote=True)
    return re.sub(r"([\\`*_\[\]|~])", r"\\\1", escaped)
