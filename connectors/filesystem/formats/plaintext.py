"""Plain text files, and the byte decoding that Markdown shares."""

from __future__ import annotations

import codecs
import re

import charset_normalizer

from .base import Parsed, ParseError, tidy

# A BOM is the file's own declaration, not a guess, so it is read here rather than by
# charset-normalizer: given a BOM whose text does not decode, charset-normalizer falls back to a
# guess (measured: b"\xef\xbb\xbfcaf\xe9" comes back as cp1006, Arabic letters) where this reports
# undecodable text, and UTF-8 files, most of them, never need charset-normalizer at all.
# Longest BOM first: the UTF-32-LE mark begins with the UTF-16-LE one.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# Control characters (category Cc) other than tab, line feed, form feed and carriage return.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")
_MAX_CONTROL_RATIO = 0.01
_WESTERN = "cp1252"


def decode_text(data: bytes) -> str:
    """Decode text bytes: a BOM's encoding, else UTF-8, else the encoding charset-normalizer
    finds plausible (cp1252 when it is among the candidates, as Western text usually is).

    Raises :class:`ParseError` ("binary content") for NUL bytes, bytes no text encoding fits
    (binary data named ``.txt``), or text that is mostly control characters.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return _checked(data.decode(encoding))
            except UnicodeDecodeError as exc:
                raise ParseError(f"undecodable {encoding} text") from exc
    if b"\x00" in data:
        raise ParseError("binary content")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = _sniffed(data)
    return _checked(text)


def _sniffed(data: bytes) -> str:
    """Non-UTF-8 bytes decoded with the encoding charset-normalizer judges readable."""
    matches = charset_normalizer.from_bytes(data)
    best = matches.best()
    if best is None:
        raise ParseError("binary content (no text encoding fits)")
    if any(_WESTERN in match.could_be_from_charset for match in matches):
        return data.decode(_WESTERN)
    return str(best)


def _checked(text: str) -> str:
    controls = sum(1 for _ in _CONTROL.finditer(text))
    if "\x00" in text or controls > len(text) * _MAX_CONTROL_RATIO:
        raise ParseError("binary content")
    return text


def parse(data: bytes) -> Parsed:
    """A plain text file: decoded and tidied; it declares no title."""
    return Parsed(title=None, text=tidy(decode_text(data)))
