"""Makes the SAML fixtures of the API tests: responses signed by an independent XML
signature implementation (signxml over lxml), so the server's own canonicalization and
signature checks are tested against someone else's.

    pip install signxml && python make.py    # rewrites the files next to this script

The key is a throwaway made here; the dates suit the tests' clock (2023-11-14T22:13:20Z).
"""
import base64
import datetime
import pathlib

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml import XMLSigner, methods

HERE = pathlib.Path(__file__).parent
IDP = "https://idp.corp.example"
SP = "firekeeper-sp"
ACS = "https://fk.example/__/auth/handler"


def keypair(name):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime(2023, 1, 1, tzinfo=datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=365 * 80))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def assertion(aid, name_id, fmt, until, attributes, extra_audience=None):
    attrs = "".join(
        f'<saml:Attribute Name="{n}">'
        + "".join(f"<saml:AttributeValue>{v}</saml:AttributeValue>" for v in vals)
        + "</saml:Attribute>"
        for n, vals in attributes
    )
    return (
        f'<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{aid}" '
        f'Version="2.0" IssueInstant="2023-11-14T22:10:00Z">'
        f"<saml:Issuer>{IDP}</saml:Issuer>"
        f'<saml:Subject><saml:NameID Format="{fmt}">{name_id}</saml:NameID>'
        f'<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">'
        f'<saml:SubjectConfirmationData NotOnOrAfter="{until}" Recipient="{ACS}"/>'
        f"</saml:SubjectConfirmation></saml:Subject>"
        f'<saml:Conditions NotBefore="2023-11-14T22:00:00Z" NotOnOrAfter="{until}">'
        f"<saml:AudienceRestriction><saml:Audience>{SP}</saml:Audience>"
        f"</saml:AudienceRestriction>"
        + (
            f"<saml:AudienceRestriction><saml:Audience>{extra_audience}</saml:Audience>"
            f"</saml:AudienceRestriction>"
            if extra_audience
            else ""
        )
        + f"</saml:Conditions>"
        f'<saml:AuthnStatement AuthnInstant="2023-11-14T22:10:00Z"/>'
        f"<saml:AttributeStatement>{attrs}</saml:AttributeStatement>"
        f"</saml:Assertion>"
    )


def response(rid, inner):
    return (
        f'<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="{rid}" '
        f'Version="2.0" IssueInstant="2023-11-14T22:10:00Z" Destination="{ACS}">'
        f'<saml:Issuer xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">{IDP}</saml:Issuer>'
        f'<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/>'
        f"</samlp:Status>{inner}</samlp:Response>"
    )


def signer():
    return XMLSigner(
        method=methods.enveloped,
        signature_algorithm="rsa-sha256",
        digest_algorithm="sha256",
        c14n_algorithm="http://www.w3.org/2001/10/xml-exc-c14n#",
    )


def sign(xml, key, cert, ref):
    el = etree.fromstring(xml.encode())
    return etree.tostring(signer().sign(el, key=key, cert=cert, reference_uri=ref)).decode()


def write(name, xml):
    (HERE / name).write_text(base64.b64encode(xml.encode()).decode() + "\n")


def main():
    key, cert = keypair("Corp IdP")
    _, other = keypair("Someone else")
    (HERE / "idp-cert.pem").write_bytes(cert)
    (HERE / "other-cert.pem").write_bytes(other)
    email = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
    unspecified = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
    later = "2099-01-01T00:00:00Z"
    signed = sign(
        assertion("_a1", "alice@corp.example", email, later,
                  [("displayName", ["Alice Corp"]), ("groups", ["eng", "admins &amp; co"])]),
        key, cert, "_a1")
    write("assertion-signed.b64", response("_r1", signed))
    plain = assertion("_a2", "bob", unspecified, later, [("mail", ["bob@corp.example"])])
    write("response-signed.b64", sign(response("_r2", plain), key, cert, "_r2"))
    expired = sign(
        assertion("_a3", "carol@corp.example", email, "2020-01-01T00:00:00Z", []),
        key, cert, "_a3")
    write("expired.b64", response("_r3", expired))
    # Two restrictions, one naming someone else: both must hold, so this one is not ours.
    shared = sign(
        assertion("_a4", "dave@corp.example", email, later, [], extra_audience="someone-else"),
        key, cert, "_a4")
    write("two-audiences.b64", response("_r4", shared))


if __name__ == "__main__":
    main()
