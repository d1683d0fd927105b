"""TLS for the local broker's second client listener (SASL_SSL, fleetlib.kafka): a certificate authority of this
machine and the broker's certificate, made under .data/kafka/tls (private keys mode 0600, never committed) when
missing, when the broker's certificate expires within 30 days or does not name the broker's host.

    ca.pem        the CA certificate: what a client trusts (MOE_KAFKA_CA_FILE)
    ca-key.pem    its private key (signs the broker's certificate; nothing else)
    broker.pem    the broker's private key (PKCS#8) and certificate chain: Kafka's PEM keystore
"""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from . import config

DIR = config.DATA / "kafka" / "tls"
CA = DIR / "ca.pem"
CA_KEY = DIR / "ca-key.pem"
KEYSTORE = DIR / "broker.pem"
RENEW_BEFORE = datetime.timedelta(days=30)
VALID = datetime.timedelta(days=397)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _private(path: Path, key: rsa.RSAPrivateKey, extra: bytes = b"") -> None:
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()) + extra)


def _ca() -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    if CA.is_file() and CA_KEY.is_file():
        cert = x509.load_pem_x509_certificate(CA.read_bytes())
        if cert.not_valid_after_utc - _now() > RENEW_BEFORE * 2:
            key = serialization.load_pem_private_key(CA_KEY.read_bytes(), password=None)
            assert isinstance(key, rsa.RSAPrivateKey)
            return cert, key
    key = _key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "MoE Sovereign Fleet local CA")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(_now() - datetime.timedelta(minutes=5))
            .not_valid_after(_now() + VALID * 3)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    _private(CA_KEY, key)
    CA.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    KEYSTORE.unlink(missing_ok=True)  # signed by the old CA: made again below
    return cert, key


def _broker_ok(ca: x509.Certificate) -> bool:
    if not KEYSTORE.is_file():
        return False
    cert = x509.load_pem_x509_certificate(KEYSTORE.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return (cert.issuer == ca.subject and cert.not_valid_after_utc - _now() > RENEW_BEFORE
            and ipaddress.ip_address(config.HOST) in names.get_values_for_type(x509.IPAddress))


def ensure() -> Path:
    """The CA certificate clients trust; the broker's keystore is current when this returns."""
    DIR.mkdir(parents=True, exist_ok=True)
    ca, ca_key = _ca()
    if not _broker_ok(ca):
        key = _key()
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kafka")]))
                .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(_now() - datetime.timedelta(minutes=5)).not_valid_after(_now() + VALID)
                .add_extension(x509.SubjectAlternativeName([
                    x509.IPAddress(ipaddress.ip_address(config.HOST)), x509.DNSName("localhost")]), critical=False)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .sign(ca_key, hashes.SHA256()))
        _private(KEYSTORE, key, cert.public_bytes(serialization.Encoding.PEM) + CA.read_bytes())
    return CA
