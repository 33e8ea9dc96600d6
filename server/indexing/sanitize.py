"""Text hygiene at ingest: drop characters a reader cannot see but a model would still read.

Retrieved text is data, not instructions. Invisible characters (zero-width, bidirectional
overrides, Unicode tags) can hide or disguise text from a person reviewing a document, so
they never reach the index.
"""

from __future__ import annotations

import re
import unicodedata

_INVISIBLE = re.compile(
    "["
    "\x00-\x08\x0b\x0e-\x1f\x7f-\x9f"  # C0 and C1 controls, DEL; \t \n \f kept, \r handled first
    "\u00ad"  # soft hyphen
    "\u061c"  # Arabic letter mark (a bidirectional mark)
    "\u115f\u1160\u3164\uffa0"  # Hangul fillers: blank "letters"
    "\u180e"  # Mongolian vowel separator (formerly a space)
    "\u200b-\u200f"  # zero-width space/joiners, left-to-right and right-to-left marks
    "\u202a-\u202e"  # bidirectional embeddings and overrides
    "\u2060-\u2064"  # word joiner, invisible operators
    "\u2066-\u2069"  # bidirectional isolates
    "\ufe00-\ufe0f"  # variation selectors (also used to smuggle bytes after a visible letter)
    "\ufeff"  # byte order mark / zero-width no-break space
    "\ufff9-\ufffb"  # interlinear annotation marks
    "\U000e0000-\U000e007f"  # Unicode tag characters
    "\U000e0100-\U000e01ef"  # variation selectors supplement
    "]"
)
_LINE_END = re.compile(r"\r\n?")
_SEPARATORS = str.maketrans({"\u2028": "\n", "\u2029": "\n\n"})  # line / paragraph separator


def clean_text(text: str) -> str:
    """``\\r\\n``, ``\\r`` and U+2028 become ``\\n``, U+2029 a blank line; invisible,
    bidirectional-control, variation-selector, tag and control characters (but tab, newline and
    form feed) are removed; the result is NFC-normalised."""
    text = _LINE_END.sub("\n", text).translate(_SEPARATORS)
    return unicodedata.normalize("NFC", _INVISIBLE.sub("", text))


def clean_line(text: str) -> str:
    """:func:`clean_text` on one line: whitespace runs (line breaks too) become one space."""
    return " ".join(clean_text(text).split())
