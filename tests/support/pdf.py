"""A minimal, valid PDF with text lines (one page, Helvetica), built byte by byte for upload tests: pypdf
reads its text back like any producer's."""

from __future__ import annotations


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
