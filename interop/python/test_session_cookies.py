"""Session cookies (identity-toolkit.md §4.4, §4.7) with firebase-admin (Python) and PyJWT.

Emulator mode: create_session_cookie / verify_session_cookie on unsigned cookies, claims
copied from the ID token, revoked and disabled users. Default mode: RS256 cookies created over
REST with the admin token, verified by PyJWT against the public x509 map and by firebase-admin
with its key URLs pointed at the server (sdk-clients.md §3.3); bad input over REST.

The SDK reads FIREBASE_AUTH_EMULATOR_HOST when an app's auth client is built and on every
verification, so the variable is set (or removed) per test by the `emu` and `prod` fixtures.
"""

import datetime
import json
import time
import uuid

import firebase_admin
import jwt
import pytest
import requests
from cryptography import x509
from firebase_admin import _token_gen, auth, credentials, exceptions

import fkinterop as fk

PASSWORD = "py-Cookie-1"
COOKIE_ISSUER = f"https://session.firebase.google.com/{fk.PROJECT}"
COOKIE_JWKS_PATH = "/identitytoolkit.googleapis.com/v1/sessionCookiePublicKeys"
CREATE_PATH = f"/identitytoolkit.googleapis.com/v1/projects/{fk.PROJECT}:createSessionCookie"
MIN_SECONDS = 300
MAX_SECONDS = 14 * 24 * 3600

needs_emu = pytest.mark.skipif(not fk.EMU_URL, reason="FK_EMU_URL is not set (run interop/run.sh)")
needs_prod = pytest.mark.skipif(
    not (fk.PROD_URL and fk.PROD_API_KEY and fk.PROD_ADMIN_TOKEN and fk.PROD_SA_FILE),
    reason="FK_PROD_URL / FK_PROD_API_KEY / FK_PROD_ADMIN_TOKEN / FK_PROD_SA_FILE are not set "
           "(run interop/run.sh)")


@pytest.fixture(scope="module")
def emu_app():
    # Its auth client is built on first use, inside a test that has the `emu` fixture.
    the_app = firebase_admin.initialize_app(
        options={"projectId": fk.PROJECT}, name=f"fk-cookie-emu-{uuid.uuid4().hex}")
    try:
        yield the_app
    finally:
        firebase_admin.delete_app(the_app)


@pytest.fixture
def emu(emu_app, monkeypatch):
    monkeypatch.setenv("FIREBASE_AUTH_EMULATOR_HOST", fk.emulator_host(fk.EMU_URL))
    return emu_app


@pytest.fixture
def prod(monkeypatch):
    """A fresh default-mode app whose verifiers fetch the server's keys."""
    monkeypatch.delenv("FIREBASE_AUTH_EMULATOR_HOST", raising=False)
    # Read when the app's auth client is built (the first auth call below).
    monkeypatch.setattr(_token_gen, "ID_TOKEN_CERT_URI", fk.PROD_URL + fk.ID_KEYS_PATH)
    monkeypatch.setattr(_token_gen, "COOKIE_CERT_URI", fk.PROD_URL + fk.COOKIE_KEYS_PATH)
    the_app = firebase_admin.initialize_app(
        credentials.Certificate(fk.PROD_SA_FILE), {"projectId": fk.PROJECT},
        name=f"fk-cookie-default-{uuid.uuid4().hex}")
    try:
        yield the_app
    finally:
        firebase_admin.delete_app(the_app)


def without_times(claims, *more):
    return {k: v for k, v in claims.items() if k not in ("iss", "iat", "exp", *more)}


def assert_cookie_claims(cookie_claims, id_claims, seconds, t0, t1):
    """Cookie claims = ID token claims except iss/iat/exp; iat = now, exp = iat + duration."""
    assert without_times(cookie_claims) == without_times(id_claims)
    assert cookie_claims["iss"] == COOKIE_ISSUER
    assert t0 - 5 <= cookie_claims["iat"] <= t1 + 5
    assert abs(cookie_claims["exp"] - (t1 + seconds)) <= 5
    assert cookie_claims["exp"] - cookie_claims["iat"] == seconds


def new_password_user(base, api_key, tag):
    """Signs up a password user; returns (uid, email, idToken)."""
    email = fk.unique_email(tag)
    created = fk.sign_up(base, api_key, email, PASSWORD)
    return created["localId"], email, created["idToken"]


# ---------------------------------------------------------------------------------------
# Emulator mode


@needs_emu
def test_emulator_cookie_copies_id_token_claims(emu):
    uid, email, _ = new_password_user(fk.EMU_URL, fk.EMU_API_KEY, "py-cookie-claims")
    auth.set_custom_user_claims(uid, {"role": "editor", "level": 3}, app=emu)
    id_token = fk.sign_in(fk.EMU_URL, fk.EMU_API_KEY, email, PASSWORD)["idToken"]
    _, id_claims = fk.decode_unverified(id_token)
    assert id_claims["role"] == "editor", "the new sign-in carries the custom claim"

    # The cookie's iat must be its own creation time, not the ID token's.
    time.sleep(1.1)
    seconds = 1800
    t0 = int(time.time())
    cookie = auth.create_session_cookie(id_token, expires_in=datetime.timedelta(seconds=seconds),
                                        app=emu)
    t1 = int(time.time())

    header, payload = fk.decode_unverified(cookie)
    assert header["alg"] == "none", "emulator-mode cookies are unsigned"
    assert cookie.endswith("."), "empty signature"
    assert_cookie_claims(payload, id_claims, seconds, t0, t1)
    assert payload["iat"] > id_claims["iat"]

    decoded = auth.verify_session_cookie(cookie, check_revoked=True, app=emu)
    assert decoded["uid"] == uid
    assert decoded["role"] == "editor"
    assert decoded["level"] == 3
    assert decoded["iss"] == COOKIE_ISSUER
    assert decoded["exp"] == payload["exp"]
    assert without_times(decoded, "uid") == without_times(id_claims)

    # Cookie and ID token are not interchangeable (the issuer differs).
    with pytest.raises(auth.InvalidIdTokenError):
        auth.verify_id_token(cookie, app=emu)
    with pytest.raises(auth.InvalidSessionCookieError):
        auth.verify_session_cookie(id_token, app=emu)


@needs_emu
def test_emulator_duration_bounds(emu):
    _, _, id_token = new_password_user(fk.EMU_URL, fk.EMU_API_KEY, "py-cookie-bounds")

    # Client-side checks: nothing is sent.
    for bad in (MIN_SECONDS - 1, MAX_SECONDS + 1, datetime.timedelta(seconds=MIN_SECONDS - 0.5)):
        with pytest.raises(ValueError, match="Illegal expiry duration"):
            auth.create_session_cookie(id_token, expires_in=bad, app=emu)

    # Both bounds are accepted by the server; an int is seconds.
    for seconds in (MIN_SECONDS, MAX_SECONDS):
        t0 = int(time.time())
        cookie = auth.create_session_cookie(id_token, expires_in=seconds, app=emu)
        t1 = int(time.time())
        _, payload = fk.decode_unverified(cookie)
        assert_cookie_claims(payload, fk.decode_unverified(id_token)[1], seconds, t0, t1)
        assert auth.verify_session_cookie(cookie, app=emu)["exp"] == payload["exp"]


@needs_emu
def test_emulator_revoked_cookie(emu):
    uid, email, _ = new_password_user(fk.EMU_URL, fk.EMU_API_KEY, "py-cookie-revoke")
    id_token = fk.sign_in(fk.EMU_URL, fk.EMU_API_KEY, email, PASSWORD)["idToken"]
    cookie = auth.create_session_cookie(id_token, expires_in=3600, app=emu)
    assert auth.verify_session_cookie(cookie, check_revoked=True, app=emu)["uid"] == uid

    # Python compares the cookie's iat with validSince, both in seconds.
    time.sleep(1.1)
    auth.revoke_refresh_tokens(uid, app=emu)
    with pytest.raises(auth.RevokedSessionCookieError):
        auth.verify_session_cookie(cookie, check_revoked=True, app=emu)
    # Without check_revoked the Python SDK does not look the user up.
    assert auth.verify_session_cookie(cookie, app=emu)["uid"] == uid

    # The server refuses the pre-revocation ID token; Python has no class for TOKEN_EXPIRED.
    with pytest.raises(exceptions.InvalidArgumentError, match="TOKEN_EXPIRED"):
        auth.create_session_cookie(id_token, expires_in=3600, app=emu)

    fresh_token = fk.sign_in(fk.EMU_URL, fk.EMU_API_KEY, email, PASSWORD)["idToken"]
    fresh = auth.create_session_cookie(fresh_token, expires_in=3600, app=emu)
    assert auth.verify_session_cookie(fresh, check_revoked=True, app=emu)["uid"] == uid


@needs_emu
def test_emulator_disabled_user_cookie(emu):
    uid, _, id_token = new_password_user(fk.EMU_URL, fk.EMU_API_KEY, "py-cookie-disabled")
    cookie = auth.create_session_cookie(id_token, expires_in=3600, app=emu)
    assert auth.verify_session_cookie(cookie, check_revoked=True, app=emu)["uid"] == uid

    auth.update_user(uid, disabled=True, app=emu)
    with pytest.raises(auth.UserDisabledError):
        auth.verify_session_cookie(cookie, check_revoked=True, app=emu)
    # Python has no class for USER_DISABLED from the server.
    with pytest.raises(exceptions.InvalidArgumentError, match="USER_DISABLED"):
        auth.create_session_cookie(id_token, expires_in=3600, app=emu)

    auth.update_user(uid, disabled=False, app=emu)
    assert auth.verify_session_cookie(cookie, check_revoked=True, app=emu)["uid"] == uid


# ---------------------------------------------------------------------------------------
# Default mode


def create_cookie_rest(body, token=None, path=CREATE_PATH, params=None):
    return fk.admin_call("POST", fk.PROD_URL, path,
                         fk.PROD_ADMIN_TOKEN if token is None else token, body, params)


def create_cookie_ok(id_token, valid_duration=None):
    body = {"idToken": id_token}
    if valid_duration is not None:
        body["validDuration"] = valid_duration
    res = create_cookie_rest(body)
    assert res.status_code == 200, f"createSessionCookie: {res.status_code} {res.text}"
    cookie = res.json()["sessionCookie"]
    assert isinstance(cookie, str) and cookie
    return cookie


def get_keys(path, params=None):
    res = requests.get(fk.PROD_URL + path, params=params, timeout=fk.TIMEOUT)
    assert res.status_code == 200, f"GET {path}: {res.status_code} {res.text}"
    return res


def verify_with_pyjwt(cookie, certs):
    """Verifies an RS256 cookie with the certificate its kid names in `certs`."""
    kid = jwt.get_unverified_header(cookie)["kid"]
    if kid not in certs:
        raise LookupError(f"kid {kid} is not in the key map")
    key = x509.load_pem_x509_certificate(certs[kid].encode("ascii")).public_key()
    return jwt.decode(cookie, key, algorithms=["RS256"], audience=fk.PROJECT,
                      issuer=COOKIE_ISSUER,
                      options={"require": ["exp", "iat", "sub", "aud", "iss"]})


@needs_prod
def test_default_cookie_verifies_with_pyjwt_and_public_keys():
    _, email, _ = new_password_user(fk.PROD_URL, fk.PROD_API_KEY, "py-cookie-pyjwt")
    id_token = fk.sign_in(fk.PROD_URL, fk.PROD_API_KEY, email, PASSWORD)["idToken"]
    seconds = 7200
    t0 = int(time.time())
    cookie = create_cookie_ok(id_token, seconds)
    t1 = int(time.time())

    header = jwt.get_unverified_header(cookie)
    assert header["alg"] == "RS256"
    kid = header.get("kid")
    assert kid, "the cookie names its key"

    res = get_keys(fk.COOKIE_KEYS_PATH)
    cache_control = res.headers.get("Cache-Control", "")
    assert "max-age=" in cache_control, cache_control
    assert int(cache_control.split("max-age=", 1)[1].split(",")[0]) > 0
    certs = res.json()
    assert kid in certs
    assert certs[kid].startswith("-----BEGIN CERTIFICATE-----")

    claims = verify_with_pyjwt(cookie, certs)
    assert_cookie_claims(claims, fk.decode_unverified(id_token)[1], seconds, t0, t1)

    # Separate key sets: the ID-token map does not hold the cookie's kid, nor the reverse.
    id_certs = get_keys(fk.ID_KEYS_PATH).json()
    assert kid not in id_certs
    id_kid = jwt.get_unverified_header(id_token)["kid"]
    assert id_kid in id_certs
    assert id_kid not in certs
    with pytest.raises(LookupError):
        verify_with_pyjwt(cookie, id_certs)
    # The ID-token key does not verify the cookie.
    with pytest.raises(jwt.InvalidSignatureError):
        verify_with_pyjwt(cookie, {kid: id_certs[id_kid]})

    # A changed payload under the same signature fails.
    head, payload, sig = cookie.split(".")
    forged = dict(fk.b64url_json(payload), sub="intruder", user_id="intruder")
    with pytest.raises(jwt.InvalidSignatureError):
        verify_with_pyjwt(f"{head}.{fk.b64url(json.dumps(forged).encode())}.{sig}", certs)

    # The JWKS form publishes the same keys and verifies the cookie too.
    jwks = get_keys(COOKIE_JWKS_PATH, params={"key": fk.PROD_API_KEY}).json()
    assert {k["kid"] for k in jwks["keys"]} == set(certs)
    jwk = jwt.PyJWKSet.from_dict(jwks)[kid]
    assert jwt.decode(cookie, jwk.key, algorithms=["RS256"], audience=fk.PROJECT,
                      issuer=COOKIE_ISSUER)["sub"] == claims["sub"]


@needs_prod
def test_default_firebase_admin_verify_session_cookie(prod):
    uid, email, _ = new_password_user(fk.PROD_URL, fk.PROD_API_KEY, "py-cookie-admin")
    id_token = fk.sign_in(fk.PROD_URL, fk.PROD_API_KEY, email, PASSWORD)["idToken"]
    cookie = create_cookie_ok(id_token, 3600)

    decoded = auth.verify_session_cookie(cookie, app=prod)
    verifier = auth._get_client(prod)._token_verifier  # pylint: disable=protected-access
    assert verifier.cookie_verifier.cert_url == fk.PROD_URL + fk.COOKIE_KEYS_PATH
    assert decoded["uid"] == uid
    assert decoded["iss"] == COOKIE_ISSUER
    assert without_times(decoded, "uid") == without_times(fk.decode_unverified(id_token)[1])
    assert auth.verify_id_token(id_token, app=prod)["uid"] == uid, "control: the ID token is valid"

    with pytest.raises(auth.InvalidSessionCookieError):
        auth.verify_session_cookie(id_token, app=prod)
    with pytest.raises(auth.InvalidIdTokenError):
        auth.verify_id_token(cookie, app=prod)
    # The emulator's unsigned format is not accepted outside emulator mode.
    _, payload = fk.decode_unverified(cookie)
    with pytest.raises(auth.InvalidSessionCookieError):
        auth.verify_session_cookie(jwt.encode(payload, None, algorithm="none"), app=prod)


@needs_prod
@pytest.mark.parametrize("body_duration", [{}, {"validDuration": 0}], ids=["missing", "zero"])
def test_default_duration_is_two_weeks(body_duration):
    _, _, id_token = new_password_user(fk.PROD_URL, fk.PROD_API_KEY, "py-cookie-two-weeks")
    t0 = int(time.time())
    res = create_cookie_rest({"idToken": id_token, **body_duration})
    t1 = int(time.time())
    assert res.status_code == 200, res.text
    cookie = res.json()["sessionCookie"]
    claims = verify_with_pyjwt(cookie, get_keys(fk.COOKIE_KEYS_PATH).json())
    assert_cookie_claims(claims, fk.decode_unverified(id_token)[1], MAX_SECONDS, t0, t1)


@needs_prod
def test_default_bad_input_over_rest():
    uid, email, _ = new_password_user(fk.PROD_URL, fk.PROD_API_KEY, "py-cookie-bad")
    id_token = fk.sign_in(fk.PROD_URL, fk.PROD_API_KEY, email, PASSWORD)["idToken"]

    def refused(body, code, **kw):
        res = create_cookie_rest(body, **kw)
        assert res.status_code == 400, f"{code}: {res.status_code} {res.text}"
        assert fk.error_message(res) == code, res.text

    # Both bounds are accepted (control for the two refusals that follow).
    for seconds in (MIN_SECONDS, MAX_SECONDS):
        claims = verify_with_pyjwt(create_cookie_ok(id_token, seconds),
                                   get_keys(fk.COOKIE_KEYS_PATH).json())
        assert claims["exp"] - claims["iat"] == seconds
    refused({"idToken": id_token, "validDuration": MIN_SECONDS - 1}, "INVALID_DURATION")
    refused({"idToken": id_token, "validDuration": MAX_SECONDS + 1}, "INVALID_DURATION")
    refused({"idToken": id_token, "validDuration": -1}, "INVALID_DURATION")
    refused({"validDuration": 600}, "MISSING_ID_TOKEN")
    refused({"idToken": "not-a-jwt", "validDuration": 600}, "INVALID_ID_TOKEN")

    cookie = create_cookie_ok(id_token, 600)
    refused({"idToken": cookie, "validDuration": 600}, "INVALID_ID_TOKEN")
    # An unsigned (emulator-style) copy of a valid ID token.
    _, id_claims = fk.decode_unverified(id_token)
    refused({"idToken": jwt.encode(id_claims, None, algorithm="none")}, "INVALID_ID_TOKEN")

    # Credentials: another project's path with this project's admin token; an API key alone.
    other = f"/identitytoolkit.googleapis.com/v1/projects/{fk.PROJECT}-other:createSessionCookie"
    res = create_cookie_rest({"idToken": id_token, "validDuration": 600}, path=other)
    assert res.status_code == 403, res.text
    res = requests.post(fk.PROD_URL + CREATE_PATH, params={"key": fk.PROD_API_KEY},
                        json={"idToken": id_token, "validDuration": 600}, timeout=fk.TIMEOUT)
    assert res.status_code == 401, res.text
    assert "sessionCookie" not in res.text

    # A deleted user's ID token.
    res = fk.admin_call("POST", fk.PROD_URL,
                        f"/identitytoolkit.googleapis.com/v1/projects/{fk.PROJECT}/accounts:delete",
                        fk.PROD_ADMIN_TOKEN, {"localId": uid})
    assert res.status_code == 200, res.text
    refused({"idToken": id_token, "validDuration": 600}, "USER_NOT_FOUND")
