"""RFC 3161 timestamps of checkpoints, checked against the timestamp authority's certificate chain
(rfc3161-client): the token's signature chains to the given root, its message imprint is the SHA-256 of the
checkpoint's bytes, and its time is returned."""

from __future__ import annotations

from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from rfc3161_client import VerificationError, VerifierBuilder, decode_timestamp_response


class TsaChain:
    """The TSA's certificates as PEM: its signing certificate, any intermediates, the root last."""

    def __init__(self, pem: bytes) -> None:
        try:
            certs = x509.load_pem_x509_certificates(pem)
        except ValueError as exc:
            raise ValueError(f"not a PEM certificate chain: {exc}") from None
        if not certs:
            raise ValueError("the TSA certificate chain is empty")
        self.pem = pem
        self.root = certs[-1]
        self.intermediates = certs[1:-1]
        self.leaf = certs[0] if len(certs) > 1 else None

    def fingerprint(self) -> str:
        """SHA-256 of the root certificate (compare it with the one the authority publishes)."""
        return self.root.fingerprint(hashes.SHA256()).hex()

    def verify(self, response_der: bytes, message: bytes) -> datetime:
        """The timestamp's time (UTC); ValueError with the reason when it does not verify."""
        try:
            response = decode_timestamp_response(response_der)
        except ValueError as exc:
            raise ValueError(f"not an RFC 3161 timestamp response: {exc}") from None
        builder = VerifierBuilder(roots=[self.root], intermediates=list(self.intermediates))
        if self.leaf is not None and not response.signed_data.certificates:
            builder = builder.tsa_certificate(self.leaf)
        try:
            builder.build().verify_message(response, message)
        except VerificationError as exc:
            raise ValueError(f"the timestamp does not verify: {exc}") from None
        gen_time = response.tst_info.gen_time
        return gen_time if gen_time.tzinfo else gen_time.replace(tzinfo=UTC)
