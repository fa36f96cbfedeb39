"""A local mail server for the interop tests, as strict as a real submission port:
STARTTLS required before AUTH, AUTH required before mail, one user.

    python3 interop/smtp_sink.py DIR USER PASSWORD

Makes a throwaway CA and a certificate for localhost / 127.0.0.1 (DIR/ca.pem is what the
client must trust), listens on a free loopback port, prints `ready <port>` and writes each
message it accepts to DIR/mail-<n>.eml (the raw message) with DIR/mail-<n>.json
(envelope: from, to, the authenticated login). Stops on SIGTERM, or when its parent exits.
"""

import asyncio
import datetime
import json
import os
import signal
import socket
import ssl
import sys
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def certificates(folder):
    """A CA (written to ca.pem) and a localhost certificate it signed; returns the paths
    of the server's certificate and key."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "firekeeper interop CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False),
            critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([
                x509.DNSName("localhost"),
                x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1")),
            ]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path, key_path = folder / "server.pem", folder / "server.key"
    cert_path.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return cert_path, key_path


class Saver:
    def __init__(self, folder):
        self.folder = folder
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        stem = self.folder / f"mail-{self.count}"
        stem.with_suffix(".eml").write_bytes(envelope.original_content or envelope.content)
        meta = {
            "from": envelope.mail_from,
            "to": envelope.rcpt_tos,
            "login": session.auth_data.login.decode() if isinstance(
                session.auth_data, LoginPassword) else None,
            "tls": session.ssl is not None,
        }
        stem.with_suffix(".json").write_text(json.dumps(meta))
        return "250 Message accepted"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    folder, user, password = Path(sys.argv[1]), sys.argv[2].encode(), sys.argv[3].encode()
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = certificates(folder)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword)
              and auth_data.login == user and auth_data.password == password)
        return AuthResult(success=ok, auth_data=auth_data)

    port = free_port()
    controller = Controller(
        Saver(folder), hostname="127.0.0.1", port=port, server_hostname="localhost",
        tls_context=tls, require_starttls=True, authenticator=authenticate,
        auth_required=True, auth_require_tls=True)
    controller.start()
    print(f"ready {port}", flush=True)

    async def serve():
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        parent = os.getppid()
        # An orphan (the test runner died) stops too.
        while not stop.is_set() and os.getppid() == parent:
            try:
                await asyncio.wait_for(stop.wait(), timeout=1)
            except asyncio.TimeoutError:
                pass

    asyncio.run(serve())
    controller.stop()


if __name__ == "__main__":
    main()
