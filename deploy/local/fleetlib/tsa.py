"""A real RFC 3161 timestamp authority for the audit checkpoints: Sigstore's timestamp-authority
(`timestamp-server`, built from the Go module proxy into .data/bin by gotools), with a file signer.

Its key (ECDSA P-256) and certificate chain (a timestamping certificate with the critical timeStamping
EKU, issued by a root of its own) are generated once into .data/tsa/ (key 0600), so the chain stays the
same across restarts and old timestamps keep verifying. The chain is what verifiers are given
(MOE_AUDIT_TSA_CHAIN). The server also serves it at /api/v1/timestamp/certchain.

Note: timestamp-server always serves its Prometheus metrics on :2112 (not configurable), so one runs per
machine.
"""

from __future__ import annotations

import datetime as dt

from . import config, gotools, osusers
from .component import Component

TSA_DIR = config.DATA / "tsa"
KEY = TSA_DIR / "tsa-key.pem"
CHAIN = TSA_DIR / "tsa-chain.pem"
PATH = "/api/v1/timestamp"


def ensure_material() -> None:
    """The TSA's key and chain, generated when missing (never replaced: old timestamps must keep verifying)."""
    if KEY.is_file() and CHAIN.is_file():
        return
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    root_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "MoE Sovereign Fleet (local)"),
                          x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def cert(subject: str, key: ec.EllipticCurvePrivateKey, ca: bool) -> x509.CertificateBuilder:
        return (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name("local TSA root"))
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=3650))
                .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True))

    root = (cert("local TSA root", root_key, True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .sign(root_key, hashes.SHA256()))
    leaf = (cert("local timestamp authority", leaf_key, False)
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
            .sign(root_key, hashes.SHA256()))
    TSA_DIR.mkdir(parents=True, exist_ok=True)
    KEY.unlink(missing_ok=True)
    KEY.touch(mode=0o600)
    KEY.write_bytes(leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    CHAIN.write_bytes(leaf.public_bytes(serialization.Encoding.PEM) + root.public_bytes(serialization.Encoding.PEM))


def prepare() -> list[str]:
    gotools.ensure_tool("timestamp-server")
    ensure_material()
    osusers.private_folder(TSA_DIR, osusers.user_of("tsa"), [KEY])  # as root: its key is moe-tsa's alone
    return [str(gotools.binary("timestamp-server")), "serve", "--host", config.HOST, "--port", str(config.port("tsa")),
            "--timestamp-signer", "file", "--file-signer-key-path", str(KEY), "--certificate-chain-path", str(CHAIN),
            "--disable-ntp-monitoring", "--log-type", "prod"]


async def check() -> None:
    import httpx

    async with httpx.AsyncClient(timeout=3) as client:
        resp = await client.get(f"http://{config.HOST}:{config.port('tsa')}{PATH}/certchain")
        if resp.status_code != 200 or "BEGIN CERTIFICATE" not in resp.text:
            raise RuntimeError(f"GET {PATH}/certchain returned {resp.status_code}")


COMPONENT = Component(name="tsa", group="infra", port_key="tsa", prepare=prepare, check=check, deadline=60,
                      match=lambda: f"--certificate-chain-path {CHAIN}", user=osusers.user_of("tsa"),
                      ready=f"`GET {PATH}/certchain` 200 with a PEM certificate chain")
