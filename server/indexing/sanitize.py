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
    "\u200b-\u200f"  # zero-width space/joiners, left-to-right and right-to-left marks
    "\u202a-\u202e"  # bidirectional embeddings and overrides
    "\u2060-\u2064"  # word joiner, invisible operators
    "\u2066-\u2069"  # bidirectional isolates
    "\ufeff"  # byte order mark / zero-width no-break space
    "\U000e0000-\U000e007f"  # Unicode tag characters
    "]"
)
_LINE_END = re.compile(r"\r\n?")


def clean_text(text: str) -> str:
    """``\\r\\n`` and ``\\r`` become ``\\n``; invisible, bidirectional-control, tag and control
    characters (but tab, newline and form feed) are removed; the result is NFC-normalised."""
    return unicodedata.normalize("NFC", _INVISIBLE.sub("", _LINE_END.sub("\n", text)))
