"""Python clients against a Firekeeper server in default (production) mode.

No FIREBASE_AUTH_EMULATOR_HOST here: the module-scoped `isolated` fixture removes it for the
whole module, and every firebase-admin app used here is a separate named app created inside
that fixture. The SDK's key URLs are module constants of firebase_admin._token_gen; they are
pointed at the server (sdk-clients.md §3.3) for this module only and restored afterwards.
"""

import json
import os
import subprocess
import time
import uuid

import firebase_admin
import jwt
import pytest
import requests
from firebase_admin import _token_gen, auth, credentials

import fkinterop as fk

pytestmark = pytest.mark.skipif(
    not (fk.PROD_URL and fk.PROD_API_KEY and fk.PROD_SA_FILE),
    reason="FK_PROD_URL / FK_PROD_API_KEY / FK_PROD_SA_FILE are not set (run interop/run.sh)")

PASSWORD = "rs256-Password-1"
IT_AUDIENCE = ("https://identitytoolkit.googleapis.com/"
               "google.identity.identitytoolkit.v1.IdentityToolkit")
API_KEY_INVALID = "API key not valid. Please pass a valid API key."


@pytest.fixture(scope="module", autouse=True)
def isolated():
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("FIREBASE_AUTH_EMULATOR_HOST", raising=False)
        # Read when an app's auth client (its TokenVerifier) is first built.
        mp.setattr(_token_gen, "ID_TOKEN_CERT_URI", fk.PROD_URL + fk.ID_KEYS_PATH)
        mp.setattr(_token_gen, "COOKIE_CERT_URI", fk.PROD_URL + fk.COOKIE_KEYS_PATH)
        apps = []
        yield apps
        for app in apps:
            firebase_admin.delete_app(app)


def new_app(isolated):
    """A fresh firebase-admin app (own auth client, own certificate cache)."""
    app = firebase_admin.initialize_app(
        credentials.Certificate(fk.PROD_SA_FILE), {"projectId": fk.PROJECT},
        name=f"fk-default-{uuid.uuid4().hex}")
    isolated.append(app)
    return app


@pytest.fixture(scope="module")
def sa_app(isolated):
    return new_app(isolated)


@pytest.fixture(scope="module")
def service_account():
    with open(fk.PROD_SA_FILE, encoding="utf-8") as f:
        return json.load(f)


def sign_in_with_custom_token_rest(token, api_key=None):
    if isinstance(token, bytes):
        token = token.decode("ascii")
    return fk.it_post(fk.PROD_URL, "accounts:signInWithCustomToken", api_key or fk.PROD_API_KEY,
                      {"token": token, "returnSecureToken": True})


def fresh_id_token(tag="py-rs256"):
    """Signs up a new password user and signs in again; returns (uid, email, idToken)."""
    email = fk.unique_email(tag)
    created = fk.sign_up(fk.PROD_URL, fk.PROD_API_KEY, email, PASSWORD)
    signed_in = fk.sign_in(fk.PROD_URL, fk.PROD_API_KEY, email, PASSWORD)
    assert signed_in["localId"] == created["localId"]
    return created["localId"], email, signed_in["idToken"]


def jwks_kids():
    res = requests.get(fk.PROD_URL + fk.JWKS_PATH, headers={"Cache-Control": "no-cache"},
                       timeout=fk.TIMEOUT)
    assert res.status_code == 200, res.text
    return {k["kid"] for k in res.json()["keys"]}


def verify_with_pyjwt(token, uid=None):
    """Verifies an RS256 ID token against a freshly fetched JWKS; returns the claims."""
    client = jwt.PyJWKClient(fk.PROD_URL + fk.JWKS_PATH, cache_jwk_set=False, cache_keys=False)
    key = client.get_signing_key_from_jwt(token)
    claims = jwt.decode(token, key.key, algorithms=["RS256"], audience=fk.PROJECT,
                        issuer=fk.ISSUER, options={"require": ["exp", "iat", "sub", "aud", "iss"]})
    if uid is not None:
        assert claims["sub"] == uid
    return claims


def tamper_signature(token):
    head, payload, sig = token.split(".")
    raw = bytearray(jwt.utils.base64url_decode(sig))
    raw[len(raw) // 2] ^= 0x01
    return f"{head}.{payload}.{fk.b64url(bytes(raw))}"


def replace_payload(token, **changes):
    head, payload, sig = token.split(".")
    claims = fk.b64url_json(payload)
    claims.update(changes)
    return f"{head}.{fk.b64url(json.dumps(claims).encode())}.{sig}"


# ---------------------------------------------------------------------------------------
# API key and admin credential


def test_api_key_and_admin_token_are_enforced():
    body = {"returnSecureToken": True}
    res = requests.post(f"{fk.PROD_URL}/identitytoolkit.googleapis.com/v1/accounts:signUp",
                        json=body, timeout=fk.TIMEOUT)
    assert res.status_code == 403, res.text
    res = fk.it_post(fk.PROD_URL, "accounts:signUp", fk.PROD_API_KEY + "-wrong", body)
    assert res.status_code == 400, res.text
    assert fk.error_message(res) == API_KEY_INVALID

    uid, email, _ = fresh_id_token("py-admin-token")
    lookup = f"{fk.PROD_URL}/identitytoolkit.googleapis.com/v1/projects/{fk.PROJECT}/accounts:lookup"
    if fk.PROD_ADMIN_TOKEN:
        res = requests.post(lookup, json={"localId": [uid]}, timeout=fk.TIMEOUT,
                            headers={"Authorization": f"Bearer {fk.PROD_ADMIN_TOKEN}"})
        assert res.status_code == 200, res.text
        assert res.json()["users"][0]["email"] == email
    res = requests.post(lookup, json={"localId": [uid]}, timeout=fk.TIMEOUT,
                        headers={"Authorization": "Bearer owner"})
    assert res.status_code == 401, "Bearer owner must not be an admin outside emulator mode"
    res = requests.post(lookup, json={"localId": [uid]}, params={"key": fk.PROD_API_KEY},
                        timeout=fk.TIMEOUT)
    assert res.status_code in (400, 401, 403), "an API key alone is not an admin credential"
    assert "users" not in res.text


# ---------------------------------------------------------------------------------------
# Custom tokens signed with the CLI-created service account


def test_custom_token_sign_in_through_node_client(sa_app, service_account):
    uid = fk.unique_uid("py-sa-custom")
    token = auth.create_custom_token(uid, {"role": "x", "level": 7}, app=sa_app)
    header, payload = fk.decode_unverified(token)
    assert header["alg"] == "RS256"
    assert header.get("kid") == service_account["private_key_id"]
    assert payload["iss"] == payload["sub"] == service_account["client_email"]
    assert payload["aud"] == IT_AUDIENCE
    assert payload["uid"] == uid

    result = fk.node_sign_in_with_custom_token(fk.PROD_URL, fk.PROD_API_KEY, token)
    assert result["uid"] == uid
    assert result["claims"]["role"] == "x"
    assert result["claims"]["level"] == 7
    assert result["claims"]["firebase"]["sign_in_provider"] == "custom"
    assert result["claims"]["aud"] == fk.PROJECT
    assert result["claims"]["iss"] == fk.ISSUER


def test_custom_token_tampering_is_rejected(sa_app):
    uid = fk.unique_uid("py-sa-tamper")
    token = auth.create_custom_token(uid, app=sa_app).decode("ascii")

    bad_sig = sign_in_with_custom_token_rest(tamper_signature(token))
    assert bad_sig.status_code == 400, bad_sig.text
    assert fk.error_message(bad_sig).startswith("INVALID_CUSTOM_TOKEN")

    other_uid = replace_payload(token, uid=fk.unique_uid("py-sa-forged"))
    res = sign_in_with_custom_token_rest(other_uid)
    assert res.status_code == 400, res.text
    assert fk.error_message(res).startswith("INVALID_CUSTOM_TOKEN")

    # The emulator's unsigned format is not accepted outside emulator mode.
    _, payload = fk.decode_unverified(token)
    unsigned = jwt.encode(payload, None, algorithm="none")
    res = sign_in_with_custom_token_rest(unsigned)
    assert res.status_code == 400, res.text
    assert fk.error_message(res).startswith("INVALID_CUSTOM_TOKEN")

    # Control: the untouched token works (so the rejections above are about the tampering).
    ok = sign_in_with_custom_token_rest(token)
    assert ok.status_code == 200, ok.text
    header, claims = fk.decode_unverified(ok.json()["idToken"])
    assert header["alg"] == "RS256"
    assert claims["sub"] == uid


# ---------------------------------------------------------------------------------------
# RS256 ID tokens


def test_key_endpoints():
    res = requests.get(fk.PROD_URL + fk.JWKS_PATH, timeout=fk.TIMEOUT)
    assert res.status_code == 200
    assert "max-age=" in res.headers.get("Cache-Control", "")
    keys = res.json()["keys"]
    assert keys
    for k in keys:
        assert k["kty"] == "RSA"
        assert k["kid"]
        assert k.get("alg", "RS256") == "RS256"
        assert k["n"] and k["e"]

    res = requests.get(fk.PROD_URL + fk.ID_KEYS_PATH, timeout=fk.TIMEOUT)
    assert res.status_code == 200
    assert "max-age=" in res.headers.get("Cache-Control", "")
    certs = res.json()
    assert set(certs) == {k["kid"] for k in keys}
    for pem in certs.values():
        assert pem.startswith("-----BEGIN CERTIFICATE-----")


def test_id_token_verifies_with_pyjwt_and_jwks():
    uid, email, token = fresh_id_token()
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256"
    assert header.get("kid")

    claims = verify_with_pyjwt(token, uid)
    assert claims["aud"] == fk.PROJECT
    assert claims["iss"] == fk.ISSUER
    assert claims["user_id"] == uid
    assert claims["email"] == email
    assert claims["email_verified"] is False
    assert claims["firebase"]["sign_in_provider"] == "password"
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["auth_time"] <= claims["iat"] <= time.time() + 5

    with pytest.raises(jwt.InvalidSignatureError):
        verify_with_pyjwt(replace_payload(token, sub="intruder", user_id="intruder"))
    with pytest.raises(jwt.InvalidSignatureError):
        verify_with_pyjwt(tamper_signature(token))
    client = jwt.PyJWKClient(fk.PROD_URL + fk.JWKS_PATH, cache_jwk_set=False)
    key = client.get_signing_key_from_jwt(token)
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(token, key.key, algorithms=["RS256"], audience="another-project")


def test_id_token_verifies_with_firebase_admin(isolated, sa_app):
    uid, email, token = fresh_id_token("py-admin-verify")
    app = new_app(isolated)
    claims = auth.verify_id_token(token, app=app)
    verifier = auth._get_client(app)._token_verifier  # pylint: disable=protected-access
    assert verifier.id_token_verifier.cert_url == fk.PROD_URL + fk.ID_KEYS_PATH
    assert claims["uid"] == uid
    assert claims["email"] == email
    assert claims["aud"] == fk.PROJECT
    assert claims["firebase"]["sign_in_provider"] == "password"

    with pytest.raises(auth.InvalidIdTokenError):
        auth.verify_id_token(tamper_signature(token), app=app)
    with pytest.raises(auth.InvalidIdTokenError):
        auth.verify_id_token(replace_payload(token, sub="intruder"), app=app)
    # A custom token is not an ID token.
    with pytest.raises(auth.InvalidIdTokenError):
        auth.verify_id_token(auth.create_custom_token(uid, app=sa_app).decode("ascii"), app=app)


# ---------------------------------------------------------------------------------------
# Signing-key rotation


@pytest.mark.skipif(not (fk.FK_BIN and fk.PROD_DATA_DIR),
                    reason="FK_BIN / FK_PROD_DATA_DIR are not set (run interop/run.sh)")
def test_key_rotation_keeps_old_tokens_valid(isolated):
    kids_before = jwks_kids()
    uid_a, _, token_a = fresh_id_token("py-rotate-a")
    kid_a = jwt.get_unverified_header(token_a)["kid"]
    assert kid_a in kids_before

    # An app that has already fetched (and may cache) the pre-rotation keys.
    early_app = new_app(isolated)
    assert auth.verify_id_token(token_a, app=early_app)["uid"] == uid_a

    proc = subprocess.run(
        [os.path.abspath(fk.FK_BIN), "keys", "rotate", "--data-dir", fk.PROD_DATA_DIR],
        capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, f"keys rotate failed: {proc.stderr}"

    # Firekeeper publishes each key one rotation period before it signs, so verifiers that
    # cached the set earlier already hold it; the rotation queues a brand-new key.
    fk.wait_until(lambda: jwks_kids() - kids_before, timeout=15,
                  what="a newly queued kid in the JWKS")

    def token_with_new_kid():
        uid, _, token = fresh_id_token("py-rotate-b")
        kid = jwt.get_unverified_header(token)["kid"]
        return (uid, token, kid) if kid != kid_a else None

    uid_b, token_b, kid_b = fk.wait_until(token_with_new_kid, timeout=15,
                                          what="tokens signed by the next key")
    assert kid_b in kids_before, "the key that signs after a rotation was published before it"

    kids_now = jwks_kids()
    assert {kid_a, kid_b} <= kids_now, "the retired key stays published"
    certs = requests.get(fk.PROD_URL + fk.ID_KEYS_PATH, timeout=fk.TIMEOUT).json()
    assert {kid_a, kid_b} <= set(certs)

    assert verify_with_pyjwt(token_a, uid_a)["sub"] == uid_a
    assert verify_with_pyjwt(token_b, uid_b)["sub"] == uid_b

    # firebase-admin caches the key map per the server's max-age: use a fresh app.
    late_app = new_app(isolated)
    assert auth.verify_id_token(token_a, app=late_app)["uid"] == uid_a
    assert auth.verify_id_token(token_b, app=late_app)["uid"] == uid_b
