"""Text from files (class names, file names, metadata, error text) made safe for a terminal.

A class name in an untrusted weights file or a file name in a dataset can hold escape
sequences that clear the screen or retitle the terminal, a newline that forges an output line,
or a bidirectional override that reorders what is shown. Printed through :func:`safe`, such
characters appear escaped and visible (``\\x1b``, ``\\n``, ``\\u202e``); ``--json`` output
needs none of this (JSON escapes control characters itself).
"""

from __future__ import annotations

import unicodedata

# Bidirectional controls (embeddings, overrides, isolates, marks) and line/paragraph separators.
_INVISIBLE = frozenset(chr(c) for c in (0x200E, 0x200F, 0x2028, 0x2029, *range(0x202A, 0x202F),
                                        *range(0x2066, 0x206A)))


def _escape(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe(text: object) -> str:
    """``text`` with every control character (C0, C1, DEL; newlines and tabs too) and every
    bidirectional control escaped visibly; everything else unchanged."""
    s = str(text)
    if s.isprintable() and not any(ch in _INVISIBLE for ch in s):
        return s
    return "".join(_escape(ch) if unicodedata.category(ch) == "Cc" or ch in _INVISIBLE
                   else ch for ch in s)


def safe_lines(text: object) -> str:
    """Each line of a multi-line message made safe, the message's own line breaks kept (for
    messages that list items one a line; the items themselves should pass through
    :func:`safe` where they are formatted)."""
    return "\n".join(safe(line) for line in str(text).split("\n"))
