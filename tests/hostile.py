"""Small generators of hostile files for extraction-limit tests (nothing big is committed)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import docx
from pypdf import PdfWriter
from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

_PARAGRAPH = b"<w:p><w:r><w:t>Expanding paragraph text.</w:t></w:r></w:p>"


def docx_bomb(path: Path, unpacked_bytes: int) -> None:
    """A valid DOCX whose ``word/document.xml`` inflates to about ``unpacked_bytes``."""
    plain = io.BytesIO()
    document = docx.Document()
    document.add_paragraph("Seed")
    document.save(plain)
    with zipfile.ZipFile(plain) as original, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as bomb:
        for item in original.infolist():
            if item.filename != "word/document.xml":
                bomb.writestr(item, original.read(item))
                continue
            head, _, tail = original.read(item).partition(b"<w:p>")
            tail = tail[tail.index(b"</w:p>") + len(b"</w:p>") :]
            with bomb.open(item.filename, "w", force_zip64=True) as out:
                out.write(head)
                block = _PARAGRAPH * 10_000
                for _ in range(max(1, unpacked_bytes // len(block))):
                    out.write(block)
                out.write(tail)


def operator_pdf(path: Path, operators: int) -> None:
    """A one-page PDF whose compressed content stream holds ``operators`` text-drawing operators."""
    writer = PdfWriter()
    page = writer.add_blank_page(612, 792)
    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
        }
    )
    page[NameObject("/Resources")] = DictionaryObject(
        {NameObject("/Font"): DictionaryObject({NameObject("/F1"): writer._add_object(font)})}
    )
    stream = DecodedStreamObject()
    stream.set_data(b"BT /F1 12 Tf 72 720 Td " + b"(a) Tj 1 0 Td " * operators + b"ET")
    page[NameObject("/Contents")] = writer._add_object(stream.flate_encode())
    writer.write(str(path))
