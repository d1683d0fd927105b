"""checksum: CRC-32, CRC-16/CCITT-FALSE, Adler-32 of UTF-8 text; the Luhn and ISO 7064 mod 97 check digits."""

from __future__ import annotations

import binascii
import zlib
from typing import Any

from mcp_service.tools.base import ToolOutput, wrong

NAMES = {"crc32": "CRC-32", "crc16_ccitt": "CRC-16/CCITT-FALSE", "adler32": "Adler-32", "luhn": "Luhn",
         "mod97": "ISO 7064 mod 97-10"}


def _digits(text: str) -> str:
    clean = "".join(text.split()).replace("-", "")
    if not clean.isdigit() or not 2 <= len(clean) <= 64 or not clean.isascii():
        raise wrong(f"{NAMES['luhn']} needs 2 to 64 decimal digits (spaces and dashes allowed)")
    return clean


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char) * (2 if index % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _mod97(text: str) -> int:
    """An IBAN's check: move the first four characters to the end, letters to 10..35, the number mod 97."""
    clean = "".join(text.split()).upper()
    if not 5 <= len(clean) <= 34 or not clean.isalnum() or not clean.isascii():
        raise wrong("mod97 needs 5 to 34 letters and digits (an IBAN)")
    moved = clean[4:] + clean[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97


def checksum(args: dict[str, Any]) -> ToolOutput:
    algorithm, text = args.get("algorithm", "crc32"), args["text"]
    name = NAMES[algorithm]
    if algorithm == "luhn":
        valid = luhn_valid(_digits(text))
        verdict = "passes" if valid else "fails"
        return ToolOutput(f"{text!r} {verdict} the Luhn check.", {"algorithm": algorithm, "valid": valid})
    if algorithm == "mod97":
        rest = _mod97(text)
        verdict = "passes" if rest == 1 else "fails"
        return ToolOutput(f"{text!r} {verdict} the ISO 7064 mod 97-10 (IBAN) check (remainder {rest}).",
                          {"algorithm": algorithm, "valid": rest == 1, "remainder": rest})
    data = text.encode("utf-8")
    if algorithm == "crc32":
        value, width = zlib.crc32(data), 8
    elif algorithm == "adler32":
        value, width = zlib.adler32(data), 8
    else:
        value, width = binascii.crc_hqx(data, 0xFFFF), 4
    hex_text = f"{value:0{width}x}"
    shown = text if len(text) <= 60 else text[:60] + "…"
    return ToolOutput(f"{name}({shown!r}) = 0x{hex_text} ({value})",
                      {"algorithm": algorithm, "hex": hex_text, "value": value, "bytes": len(data)})
