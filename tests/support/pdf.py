"""PDFs built byte by byte for upload tests: a minimal valid one with text lines (one page, Helvetica) that
pypdf reads back like any producer's, and two small ones built to expand when read (PDF bombs)."""

from __future__ import annotations

import zlib


def _escape(line: str) -> str:
    return line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def text_pdf(lines: list[str], to_unicode: dict[str, str] | None = None) -> bytes:
    """`to_unicode`: the font's ToUnicode map, a character of `lines` -> the UTF-16BE hex it stands for (e.g.
    {"A": "D800"}: a lone surrogate, which a broken producer's map can name and pypdf keeps)."""
    stream = "BT /F1 11 Tf 14 TL 50 780 Td " + " ".join(f"({_escape(line)}) Tj T*" for line in lines) + " ET"
    mapped = " /ToUnicode 6 0 R" if to_unicode else ""
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 842] /Resources << /Font << /F1 4 0 R >> >> "
        "/Contents 5 0 R >>",
        f"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding{mapped} >>",
        f"<< /Length {len(stream.encode('latin-1'))} >>\nstream\n{stream}\nendstream",
    ]
    if to_unicode:
        chars = "".join(f"<{ord(c):02X}> <{target}>\n" for c, target in to_unicode.items())
        cmap = ("/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n/CMapName /Custom def\n"
                "/CMapType 2 def\n1 begincodespacerange\n<00> <FF>\nendcodespacerange\n"
                f"{len(to_unicode)} beginbfchar\n{chars}endbfchar\nendcmap\n"
                "CMapName currentdict /CMap defineresource pop\nend\nend")
        objects.append(f"<< /Length {len(cmap)} >>\nstream\n{cmap}\nendstream")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{offset:010d} 00000 n \n" for offset in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def _pdf(objects: list[bytes]) -> bytes:
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{offset:010d} 00000 n \n" for offset in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def _flate(content: bytes, entries: bytes = b"") -> bytes:
    packed = zlib.compress(content, 9)
    return b"<< /Length %d /Filter /FlateDecode %s >>\nstream\n%s\nendstream" % (len(packed), entries, packed)


FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"


def expanding_pdf(pages: int, chars_per_page: int) -> bytes:
    """A few kilobytes that read as `pages` pages of `chars_per_page` characters each: one page object (one
    compressed content stream of repeated lines) listed `pages` times in the page tree."""
    line = b"(" + b"A" * 99 + b") Tj T* "
    content = b"BT /F1 11 Tf 14 TL 50 780 Td " + line * (chars_per_page // 99) + b"ET"
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 842] /Resources << /Font << /F1 3 0 R >> >> " \
           b"/Contents 4 0 R >>"
    return _pdf([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b"5 0 R " * pages, pages), FONT, _flate(content), page])


def busy_pdf(pages: int, fan: int = 70) -> bytes:
    """A few kilobytes whose page (listed `pages` times) draws a form XObject `fan` times that draws a text
    form `fan` times: pypdf spends seconds of CPU on each page for ten thousand characters."""
    form = b"/Type /XObject /Subtype /Form /BBox [0 0 612 842] /Resources << %s >>"
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 842] /Resources << /XObject << /X 4 0 R >> >> " \
           b"/Contents 6 0 R >>"
    return _pdf([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b"7 0 R " * pages, pages), FONT, _flate(b"/Y Do " * fan, form % b"/XObject << /Y 5 0 R >>"),
                 _flate(b"BT /F1 11 Tf (a) Tj ET", form % b"/Font << /F1 3 0 R >>"), _flate(b"/X Do " * fan), page])
