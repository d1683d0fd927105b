"""Text at the gateway's edge that is not UTF-8: a JSON body (JSON is UTF-8, RFC 8259), the value of a header
the gateway reads as text, a form in a charset whose decoder yields lone surrogates (UTF-7, unicode_escape:
Starlette decodes a multipart body in the charset its Content-Type names). Lone surrogates inside a decoded
JSON body are edge_json's (a path names them)."""

from __future__ import annotations

import codecs
from collections.abc import Iterable

from python_multipart.multipart import parse_options_header

from moe_core.llm.input_limits.json_shape import EdgeError

FORM_CHARSETS = frozenset({"utf-8", "ascii", "iso8859-1"})  # codecs' names; none decodes to a lone surrogate

# The headers read as text (moe_core.access.request_auth, the edge's template_select, resume, X-Request-Timeout, the
# console's CSRF token). Others are not read, so a proxy's own non-UTF-8 header does not make a request fail.
TEXT_HEADERS = frozenset({b"authorization", b"x-api-key", b"x-moe-tenant", b"x-moe-template", b"last-event-id",
                          b"x-request-timeout", b"x-csrf-token"})


def check_headers(headers: Iterable[tuple[bytes, bytes]]) -> None:
    """Refuse a text header whose bytes are not UTF-8 (e.g. ED A0 80, a lone surrogate in CESU-8/WTF-8)."""
    for name, value in headers:
        if name in TEXT_HEADERS and not value.isascii():
            try:
                value.decode("utf-8")
            except UnicodeDecodeError as exc:
                header = name.decode("latin-1")
                raise EdgeError(400, f"the {header} header is not UTF-8 text ({_where(exc)})", param=header,
                                code="invalid_text") from None


def body_not_utf8(exc: UnicodeDecodeError) -> EdgeError:
    return EdgeError(400, f"the request body is not UTF-8 text ({_where(exc)}); JSON is sent as UTF-8",
                     code="invalid_text")


def _where(exc: UnicodeDecodeError) -> str:
    return f"byte 0x{exc.object[exc.start]:02X} at offset {exc.start}: {exc.reason}"


def check_form_charset(content_type: bytes) -> None:
    """Refuse a form whose Content-Type names a charset other than UTF-8 (ASCII, Latin-1)."""
    charset = parse_options_header(content_type)[1].get(b"charset")
    if charset is None:
        return
    name = charset.decode("latin-1")
    try:
        codec: str | None = codecs.lookup(name).name
    except LookupError:
        codec = None
    if codec not in FORM_CHARSETS:
        raise EdgeError(400, f"a form is read as UTF-8: charset={name[:40]!r} is not accepted", param="Content-Type",
                        code="invalid_text")
