"""Session flows of the seed "manage user sessions", run by firebase-admin (Python) in
emulator mode: revoking refresh tokens, detecting revoked and disabled users with
verify_id_token(check_revoked=True), refreshes after a revocation, and Firekeeper's own
per-session API under /firekeeper/v1/.

Like test_admin_emulator.py, FIREBASE_AUTH_EMULATOR_HOST is set for this module only and
the module uses its own named app.
"""

import time
import uuid

import firebase_admin
import pytest
from firebase_admin import auth

import fkinterop as fk

pytestmark = pytest.mark.skipif(
    not fk.EMU_URL, reason="FK_EMU_URL is not set (run interop/run.sh)")

PASSWORD = "py-Session-1"
NOT_IN_REFERENCE = pytest.mark.skipif(
    fk.EMU_IS_REFERENCE, reason="the reference emulator's refresh tokens ignore validSince "
                                "and it has no Firekeeper session API")


@pytest.fixture(scope="module")
def app():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FIREBASE_AUTH_EMULATOR_HOST", fk.emulator_host(fk.EMU_URL))
        the_app = firebase_admin.initialize_app(
            options={"projectId": fk.PROJECT}, name=f"fk-sessions-{uuid.uuid4().hex}")
        try:
            yield the_app
        finally:
            firebase_admin.delete_app(the_app)


def new_user(app, tag):
    """A password user created through the Admin SDK (so no session exists yet)."""
    email = fk.unique_email(tag)
    user = auth.create_user(email=email, password=PASSWORD, app=app)
    return user.uid, email


def valid_since(uid):
    """validSince (seconds, an int) from the admin accounts:lookup REST call."""
    res = fk.admin_call("POST", fk.EMU_URL,
                        f"/identitytoolkit.googleapis.com/v1/projects/{fk.PROJECT}/accounts:lookup",
                        fk.EMU_ADMIN_TOKEN, {"localId": [uid]})
    assert res.status_code == 200, f"accounts:lookup: {res.status_code} {res.text}"
    users = res.json().get("users", [])
    assert len(users) == 1, res.text
    return int(users[0]["validSince"])


def test_revoke_refresh_tokens_makes_check_revoked_fail(app):
    uid, email = new_user(app, "py-sess-revoke")
    token = fk.sign_in(fk.EMU_URL, fk.EMU_API_KEY, email, PASSWORD)["idToken"]
    iat = fk.decode_unverified(token)[1]["iat"]
    assert auth.verify_id_token(token, check_revoked=True, app=app)["uid"] == uid

    # validSince has one-second resolution: the token must be older than the revocation.
    time.sleep(1.1)
    auth.revoke_refresh_tokens(uid, app=app)
    revoked_at = time.time()

    with pytest.raises(auth.RevokedIdTokenError):
        auth.verify_id_token(token, check_revoked=True, app=app)

    after = auth.get_user(uid, app=app).tokens_valid_after_timestamp
    since = valid_since(uid)
    assert after == since * 1000, f"tokens_valid_after_timestamp {after} vs validSince {since}"
    assert since > iat, f"validSince {since} is not after the token's iat {iat}"
    assert abs(since - revoked_at) < 5, f"validSince {since} is not about now ({revoked_at:.0f})"


def test_disabled_user_fails_check_revoked(app):
    uid, email = new_user(app, "py-sess-disabled")
    token = fk.sign_in(fk.EMU_URL, fk.EMU_API_KEY, email, PASSWORD)["idToken"]
    assert auth.verify_id_token(token, check_revoked=True, app=app)["uid"] == uid

    assert auth.update_user(uid, disabled=True, app=app).disabled is True
    with pytest.raises(auth.UserDisabledError):
        auth.verify_id_token(token, check_revoked=True, app=app)


@NOT_IN_REFERENCE
def test_refresh_after_revoke_is_token_expired(app):
    uid, email = new_user(app, "py-sess-refresh")
    signed_in = fk.sign_in(fk.EMU_URL, fk.EMU_API_KEY, email, PASSWORD)
    refresh_token = signed_in["refreshToken"]

    # Before the revocation the refresh token works.
    res = fk.refresh(fk.EMU_URL, fk.EMU_API_KEY, refresh_token)
    assert res.status_code == 200, f"refresh before revoke: {res.status_code} {res.text}"
    assert res.json()["user_id"] == uid

    time.sleep(1.1)
    auth.revoke_refresh_tokens(uid, app=app)

    res = fk.refresh(fk.EMU_URL, fk.EMU_API_KEY, refresh_token)
    assert res.status_code == 400, f"refresh after revoke: {res.status_code} {res.text}"
    assert fk.error_message(res) == "TOKEN_EXPIRED"

    # A new sign-in starts a valid session again.
    fresh = fk.sign_in(fk.EMU_URL, fk.EMU_API_KEY, email, PASSWORD)
    assert fresh["localId"] == uid
    claims = auth.verify_id_token(fresh["idToken"], check_revoked=True, app=app)
    assert claims["uid"] == uid
    res = fk.refresh(fk.EMU_URL, fk.EMU_API_KEY, fresh["refreshToken"])
    assert res.status_code == 200, f"refresh of the new session: {res.status_code} {res.text}"


def live_sessions(uid):
    res = fk.admin_call("GET", fk.EMU_URL, fk.fk_sessions_path(uid), fk.EMU_ADMIN_TOKEN)
    assert res.status_code == 200, f"sessions: {res.status_code} {res.text}"
    sessions = res.json()["sessions"]
    return sessions, [s for s in sessions if not s.get("endedReason")]


@NOT_IN_REFERENCE
def test_firekeeper_session_api_revokes_one_session(app):
    uid, email = new_user(app, "py-sess-api")
    first = fk.sign_in(fk.EMU_URL, fk.EMU_API_KEY, email, PASSWORD)
    second = fk.sign_in(fk.EMU_URL, fk.EMU_API_KEY, email, PASSWORD)

    _, live = live_sessions(uid)
    assert len(live) == 2, f"expected 2 live sessions, got {live}"
    live_ids = {s["sessionId"] for s in live}
    for s in live:
        assert s["signInProvider"] == "password"
        assert abs(int(s["createdAt"]) / 1000 - time.time()) < 60

    sid1 = fk.decode_unverified(first["idToken"])[1].get("sid")
    sid2 = fk.decode_unverified(second["idToken"])[1].get("sid")
    assert sid1 in live_ids, f"sid {sid1!r} is not one of {live_ids}"
    assert sid2 in live_ids, f"sid {sid2!r} is not one of {live_ids}"
    assert sid1 != sid2

    res = fk.admin_call("POST", fk.EMU_URL, fk.fk_revoke_session_path(sid1), fk.EMU_ADMIN_TOKEN)
    assert res.status_code == 200, f"sessions/{sid1}:revoke: {res.status_code} {res.text}"
    assert res.json().get("revoked") == 1, res.text

    res = fk.refresh(fk.EMU_URL, fk.EMU_API_KEY, first["refreshToken"])
    assert res.status_code == 400, f"refresh of the ended session: {res.status_code} {res.text}"
    assert fk.error_message(res) == "TOKEN_EXPIRED"

    # The ended session's ID tokens are refused too; the other session's still work.
    res = fk.it_post(fk.EMU_URL, "accounts:lookup", fk.EMU_API_KEY, {"idToken": first["idToken"]})
    assert res.status_code == 400, f"lookup with the ended session: {res.status_code} {res.text}"
    assert fk.error_message(res) == "TOKEN_EXPIRED"
    looked_up = fk.it_ok(fk.EMU_URL, "accounts:lookup", fk.EMU_API_KEY,
                         {"idToken": second["idToken"]})
    assert [u["localId"] for u in looked_up["users"]] == [uid]

    res = fk.refresh(fk.EMU_URL, fk.EMU_API_KEY, second["refreshToken"])
    assert res.status_code == 200, f"refresh of the other session: {res.status_code} {res.text}"
    assert res.json()["user_id"] == uid
    assert fk.decode_unverified(res.json()["id_token"])[1].get("sid") == sid2

    sessions, live = live_sessions(uid)
    assert [s["sessionId"] for s in live] == [sid2]
    ended = [s for s in sessions if s["sessionId"] == sid1]
    assert len(ended) == 1 and ended[0].get("endedReason") == "revoked", sessions

    res = fk.admin_call("GET", fk.EMU_URL, fk.fk_events_path(uid), fk.EMU_ADMIN_TOKEN)
    assert res.status_code == 200, f"events: {res.status_code} {res.text}"
    events = res.json()["events"]
    assert all(e["localId"] == uid for e in events)
    sign_ins = {e.get("sessionId") for e in events if e["kind"] == "sign_in"}
    assert {sid1, sid2} <= sign_ins, f"sign_in events: {events}"
    ended_events = [e for e in events if e["kind"] == "session_ended"]
    assert [e.get("sessionId") for e in ended_events] == [sid1], f"session_ended events: {events}"
    ids = [e["id"] for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids), f"event ids not increasing: {ids}"
