"""RFC 3161 timestamps of checkpoints, checked against the timestamp authority's certificate chain
(rfc3161-client): the token's signature chains to the given root, its message imprint is the SHA-256 of the
checkpoint's bytes, and its time is returned.

Several chains may be given in one PEM, one after the other (each ends with its self-signed root): a keyring of
TSA roots, as an auditor holds across a change of timestamp authority (an upgrade, a re-keyed or replaced TSA).
A timestamp verifies when it chains to any of them; none is taken from the record itself."""

from __future__ import annotations

from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from rfc3161_client import VerificationError, VerifierBuilder, decode_timestamp_response


class TsaChain:
    """The TSA's certificates as PEM: its signing certificate, any intermediates, the root last; or several such
    chains one after the other (a keyring of TSA roots: each chain ends with a self-signed root)."""

    def __init__(self, pem: bytes) -> None:
        try:
            certs = x509.load_pem_x509_certificates(pem)
        except ValueError as exc:
            raise ValueError(f"not a PEM certificate chain: {exc}") from None
        if not certs:
            raise ValueError("the TSA certificate chain is empty")
        self.pem = pem
        self.chains = _split(certs)

    def fingerprint(self) -> str:
        """SHA-256 of the root certificate (compare it with the one the authority publishes); of each root of a
        keyring, comma-separated, in the order given."""
        return ", ".join(chain[-1].fingerprint(hashes.SHA256()).hex() for chain in self.chains)

    def verify(self, response_der: bytes, message: bytes) -> datetime:
        """The timestamp's time (UTC); ValueError with the reason when it does not verify with any given root."""
        try:
            response = decode_timestamp_response(response_der)
        except ValueError as exc:
            raise ValueError(f"not an RFC 3161 timestamp response: {exc}") from None
        reasons = []
        for chain in self.chains:
            builder = VerifierBuilder(roots=[chain[-1]], intermediates=list(chain[1:-1]))
            if len(chain) > 1 and not response.signed_data.certificates:
                builder = builder.tsa_certificate(chain[0])
            try:
                builder.build().verify_message(response, message)
            except VerificationError as exc:
                reasons.append(str(exc))
                continue
            gen_time = response.tst_info.gen_time
            return gen_time if gen_time.tzinfo else gen_time.replace(tzinfo=UTC)
        where = "" if len(self.chains) == 1 else f" with any of the {len(self.chains)} TSA roots given"
        raise ValueError(f"the timestamp does not verify{where}: {'; '.join(dict.fromkeys(reasons))}")


def _split(certs: list[x509.Certificate]) -> list[list[x509.Certificate]]:
    """The chains of a PEM bundle: each runs up to and including a self-signed certificate (its root)."""
    chains, current = [], []
    for cert in certs:
        current.append(cert)
        if cert.issuer == cert.subject:
            chains.append(current)
            current = []
    if current:
        if chains:
            raise ValueError("the TSA certificate chains do not each end with a self-signed root: "
                             f"{len(current)} certificates follow the last root")
        chains.append(current)  # one chain given without a self-signed last certificate: its last one is the root
    return chains
