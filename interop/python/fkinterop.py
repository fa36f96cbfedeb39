"""Shared helpers for the Python interop tests (REST calls, the Node sign-in script).

Environment (set by interop/run.sh):
  FK_EMU_URL, FK_PROD_URL, FK_PROD_API_KEY, FK_PROD_ADMIN_TOKEN, FK_PROD_SA_FILE,
  FK_PROD_DATA_DIR, FK_PROJECT, FK_BIN.
  FK_EMU_IS_REFERENCE=1 only when FK_EMU_URL is the reference Firebase Auth Emulator.
"""

import base64
import json
import os
import subprocess
import time
import uuid
from pathlib import Path

import requests

PROJECT = os.environ.get("FK_PROJECT", "demo-firekeeper")
EMU_URL = os.environ.get("FK_EMU_URL", "").rstrip("/")
PROD_URL = os.environ.get("FK_PROD_URL", "").rstrip("/")
PROD_API_KEY = os.environ.get("FK_PROD_API_KEY", "")
PROD_ADMIN_TOKEN = os.environ.get("FK_PROD_ADMIN_TOKEN", "")
PROD_SA_FILE = os.environ.get("FK_PROD_SA_FILE", "")
PROD_DATA_DIR = os.environ.get("FK_PROD_DATA_DIR", "")
FK_BIN = os.environ.get("FK_BIN", "")
EMU_IS_REFERENCE = os.environ.get("FK_EMU_IS_REFERENCE") == "1"

# Any non-empty key is accepted in emulator mode.
EMU_API_KEY = "fk-interop-any-key"
ISSUER = f"https://securetoken.google.com/{PROJECT}"
ID_KEYS_PATH = "/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com"
JWKS_PATH = "/service_accounts/v1/jwk/securetoken@system.gserviceaccount.com"
COOKIE_KEYS_PATH = "/identitytoolkit/v3/relyingparty/publicKeys"

NODE_SCRIPT = Path(__file__).resolve().parent.parent / "node" / "signin-custom-token.mjs"
TIMEOUT = 15


def unique_email(tag):
    return f"{tag}-{uuid.uuid4().hex[:12]}@example.com"


def unique_uid(tag):
    return f"{tag}-{uuid.uuid4().hex[:16]}"


def emulator_host(url):
    """host:port of a base URL, the form FIREBASE_AUTH_EMULATOR_HOST wants."""
    return url.split("//", 1)[-1].rstrip("/")


def it_post(base, endpoint, api_key, body):
    """POST an Identity Toolkit end-user call; returns the requests.Response."""
    return requests.post(
        f"{base}/identitytoolkit.googleapis.com/v1/{endpoint}",
        params={"key": api_key},
        json=body,
        timeout=TIMEOUT,
    )


def it_ok(base, endpoint, api_key, body):
    res = it_post(base, endpoint, api_key, body)
    assert res.status_code == 200, f"{endpoint}: {res.status_code} {res.text}"
    return res.json()


def error_message(res):
    """The error.message of an Identity Toolkit error response."""
    try:
        return res.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return f"<no error envelope: {res.status_code} {res.text[:200]}>"


def sign_up(base, api_key, email, password):
    return it_ok(base, "accounts:signUp", api_key,
                 {"email": email, "password": password, "returnSecureToken": True})


def sign_in(base, api_key, email, password):
    return it_ok(base, "accounts:signInWithPassword", api_key,
                 {"email": email, "password": password, "returnSecureToken": True})


def b64url_json(segment):
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def decode_unverified(token):
    """(header, payload) of a JWT without any verification."""
    if isinstance(token, bytes):
        token = token.decode("ascii")
    parts = token.split(".")
    assert len(parts) == 3, f"not a JWT: {token[:40]}..."
    return b64url_json(parts[0]), b64url_json(parts[1])


def node_sign_in_with_custom_token(url, api_key, token):
    """Runs node/signin-custom-token.mjs; returns its {uid, claims}."""
    if isinstance(token, bytes):
        token = token.decode("ascii")
    env = {k: v for k, v in os.environ.items() if k != "FIREBASE_AUTH_EMULATOR_HOST"}
    env["FK_PROJECT"] = PROJECT
    proc = subprocess.run(
        ["node", str(NODE_SCRIPT), url, api_key, token],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )
    assert proc.returncode == 0, (
        f"signin-custom-token.mjs failed ({proc.returncode}): {proc.stderr.strip()}")
    return json.loads(proc.stdout)


def wait_until(predicate, timeout, interval=0.25, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# --- Session helpers: Secure Token refreshes, admin REST calls, the Firekeeper session API ---

# The admin Bearer token every emulator-mode server accepts.
EMU_ADMIN_TOKEN = "owner"


def refresh(base, api_key, refresh_token):
    """grant_type=refresh_token at the Secure Token endpoint; returns the requests.Response."""
    return requests.post(
        f"{base}/securetoken.googleapis.com/v1/token",
        params={"key": api_key},
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        timeout=TIMEOUT,
    )


def admin_call(method, base, path, token, body=None, params=None):
    """An admin request (Bearer `token`) to `path` on `base`; returns the requests.Response."""
    return requests.request(
        method, f"{base}{path}",
        headers={"Authorization": f"Bearer {token}"},
        json=body, params=params, timeout=TIMEOUT,
    )


def fk_sessions_path(uid):
    return f"/firekeeper/v1/projects/{PROJECT}/accounts/{uid}/sessions"


def fk_events_path(uid):
    return f"/firekeeper/v1/projects/{PROJECT}/accounts/{uid}/events"


def fk_revoke_session_path(session_id):
    return f"/firekeeper/v1/projects/{PROJECT}/sessions/{session_id}:revoke"
