"""firebase-admin (Python) against a Firekeeper server started with --emulator.

The SDK is switched to emulator mode by FIREBASE_AUTH_EMULATOR_HOST, which it reads when
the app's auth client is built and again on every verify_id_token. The variable is set
for this module only (module-scoped fixture) and the module uses its own named app.
"""

import time
import uuid

import firebase_admin
import pytest
from firebase_admin import auth

import fkinterop as fk

pytestmark = pytest.mark.skipif(
    not fk.EMU_URL, reason="FK_EMU_URL is not set (run interop/run.sh)")

PASSWORD = "py-Password-1"


@pytest.fixture(scope="module")
def app():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FIREBASE_AUTH_EMULATOR_HOST", fk.emulator_host(fk.EMU_URL))
        the_app = firebase_admin.initialize_app(
            options={"projectId": fk.PROJECT}, name=f"fk-emulator-{uuid.uuid4().hex}")
        try:
            yield the_app
        finally:
            firebase_admin.delete_app(the_app)


def unique_phone():
    # E.164, random enough to avoid PHONE_NUMBER_EXISTS between runs on one server.
    return "+1555" + str(uuid.uuid4().int)[:7]


def test_create_and_get_user(app):
    email, phone = fk.unique_email("py-create"), unique_phone()
    user = auth.create_user(email=email, password=PASSWORD, display_name="Grace Hopper",
                            phone_number=phone, app=app)
    assert user.uid
    assert user.email == email
    assert user.display_name == "Grace Hopper"
    assert user.phone_number == phone
    assert user.email_verified is False
    assert user.disabled is False
    assert user.custom_claims is None
    assert sorted(p.provider_id for p in user.provider_data) == ["password", "phone"]
    assert user.user_metadata.creation_timestamp > (time.time() - 60) * 1000

    by_uid = auth.get_user(user.uid, app=app)
    by_email = auth.get_user_by_email(email, app=app)
    by_phone = auth.get_user_by_phone_number(phone, app=app)
    for found in (by_uid, by_email, by_phone):
        assert found.uid == user.uid
        assert found.email == email
        assert found.phone_number == phone
        assert found.display_name == "Grace Hopper"

    # The password works for an end-user sign-in.
    signed_in = fk.sign_in(fk.EMU_URL, fk.EMU_API_KEY, email, PASSWORD)
    assert signed_in["localId"] == user.uid

    with pytest.raises(auth.UserNotFoundError):
        auth.get_user_by_email(fk.unique_email("py-nobody"), app=app)
    with pytest.raises(auth.EmailAlreadyExistsError):
        auth.create_user(email=email, password=PASSWORD, app=app)
    with pytest.raises(auth.PhoneNumberAlreadyExistsError):
        auth.create_user(phone_number=phone, app=app)


def test_create_user_with_uid_and_duplicate(app):
    uid = fk.unique_uid("py-uid")
    user = auth.create_user(uid=uid, app=app)
    assert user.uid == uid
    assert user.email is None
    with pytest.raises(auth.UidAlreadyExistsError):
        auth.create_user(uid=uid, app=app)


def test_list_users_iterate_all_and_paging(app):
    created = {auth.create_user(email=fk.unique_email("py-list"), app=app).uid for _ in range(5)}

    all_uids = [u.uid for u in auth.list_users(app=app).iterate_all()]
    assert len(all_uids) == len(set(all_uids)), "iterate_all returned duplicates"
    assert created <= set(all_uids)

    total = len(all_uids)
    page = auth.list_users(max_results=2, app=app)
    assert page.has_next_page
    assert page.next_page_token
    seen, pages = [], 0
    while page is not None:
        pages += 1
        assert len(page.users) <= 2
        seen.extend(u.uid for u in page.users)
        page = page.get_next_page()
        assert pages <= total, "paging does not terminate"
    assert len(seen) == len(set(seen)), "pages overlap"
    assert created <= set(seen)
    assert pages >= 3  # at least 5 users in pages of 2
    # Users created by concurrent tests may add to the count, never remove from it.
    assert len(seen) >= total


def test_update_user(app):
    email, phone = fk.unique_email("py-update"), unique_phone()
    user = auth.create_user(email=email, password=PASSWORD, display_name="Before",
                            phone_number=phone, app=app)

    updated = auth.update_user(user.uid, display_name="After", email_verified=True, app=app)
    assert updated.display_name == "After"
    assert updated.email_verified is True
    fetched = auth.get_user(user.uid, app=app)
    assert fetched.display_name == "After"
    assert fetched.email_verified is True

    # In the Python SDK a None argument means "leave unchanged" ...
    updated = auth.update_user(user.uid, phone_number=None, display_name=None, app=app)
    assert updated.phone_number == phone
    assert updated.display_name == "After"
    # ... and DELETE_ATTRIBUTE removes the value (sent as deleteProvider / deleteAttribute).
    # Removing the phone number deletes the phone provider.
    updated = auth.update_user(user.uid, phone_number=auth.DELETE_ATTRIBUTE,
                               display_name=auth.DELETE_ATTRIBUTE, app=app)
    assert updated.phone_number is None
    assert updated.display_name is None
    assert [p.provider_id for p in updated.provider_data] == ["password"]
    with pytest.raises(auth.UserNotFoundError):
        auth.get_user_by_phone_number(phone, app=app)

    # Disabled users cannot sign in.
    updated = auth.update_user(user.uid, disabled=True, app=app)
    assert updated.disabled is True
    res = fk.it_post(fk.EMU_URL, "accounts:signInWithPassword", fk.EMU_API_KEY,
                     {"email": email, "password": PASSWORD, "returnSecureToken": True})
    assert res.status_code == 400
    assert fk.error_message(res).startswith("USER_DISABLED")

    updated = auth.update_user(user.uid, disabled=False, app=app)
    assert updated.disabled is False
    assert fk.sign_in(fk.EMU_URL, fk.EMU_API_KEY, email, PASSWORD)["localId"] == user.uid

    with pytest.raises(auth.UserNotFoundError):
        auth.update_user(fk.unique_uid("py-missing"), display_name="x", app=app)


def test_custom_claims(app):
    user = auth.create_user(app=app)
    auth.set_custom_user_claims(user.uid, {"role": "admin", "level": 3, "tags": ["a", "b"]},
                                app=app)
    assert auth.get_user(user.uid, app=app).custom_claims == {
        "role": "admin", "level": 3, "tags": ["a", "b"]}
    auth.set_custom_user_claims(user.uid, None, app=app)
    assert auth.get_user(user.uid, app=app).custom_claims is None


def test_revoke_refresh_tokens_moves_valid_after(app):
    user = auth.create_user(email=fk.unique_email("py-revoke"), password=PASSWORD, app=app)
    before = auth.get_user(user.uid, app=app).tokens_valid_after_timestamp
    time.sleep(1.1)
    auth.revoke_refresh_tokens(user.uid, app=app)
    after = auth.get_user(user.uid, app=app).tokens_valid_after_timestamp
    assert after > before
    assert after % 1000 == 0
    assert abs(after / 1000 - time.time()) < 10


def test_delete_user(app):
    user = auth.create_user(email=fk.unique_email("py-delete"), app=app)
    auth.delete_user(user.uid, app=app)
    with pytest.raises(auth.UserNotFoundError):
        auth.get_user(user.uid, app=app)
    with pytest.raises(auth.UserNotFoundError):
        auth.delete_user(user.uid, app=app)


def test_delete_users(app):
    uids = [auth.create_user(app=app).uid for _ in range(3)]
    missing = fk.unique_uid("py-never-existed")
    result = auth.delete_users(uids + [missing], app=app)
    assert result.success_count == 4
    assert result.failure_count == 0
    assert result.errors == []
    lookup = auth.get_users([auth.UidIdentifier(u) for u in uids], app=app)
    assert lookup.users == []
    assert {i.uid for i in lookup.not_found} == set(uids)


def test_verify_id_token_with_custom_claims(app):
    email = fk.unique_email("py-verify")
    user = auth.create_user(email=email, password=PASSWORD, app=app)
    auth.set_custom_user_claims(user.uid, {"role": "auditor"}, app=app)
    signed_in = fk.sign_in(fk.EMU_URL, fk.EMU_API_KEY, email, PASSWORD)

    header, _ = fk.decode_unverified(signed_in["idToken"])
    assert header["alg"] == "none"
    assert signed_in["idToken"].endswith(".")

    claims = auth.verify_id_token(signed_in["idToken"], app=app)
    assert claims["uid"] == user.uid
    assert claims["sub"] == user.uid
    assert claims["aud"] == fk.PROJECT
    assert claims["iss"] == fk.ISSUER
    assert claims["email"] == email
    assert claims["role"] == "auditor"
    assert claims["firebase"]["sign_in_provider"] == "password"

    with pytest.raises(auth.InvalidIdTokenError):
        auth.verify_id_token("not.a-token", app=app)


def test_verify_id_token_check_revoked(app):
    email = fk.unique_email("py-check-revoked")
    user = auth.create_user(email=email, password=PASSWORD, app=app)
    token = fk.sign_in(fk.EMU_URL, fk.EMU_API_KEY, email, PASSWORD)["idToken"]
    assert auth.verify_id_token(token, check_revoked=True, app=app)["uid"] == user.uid

    # validSince is in seconds and tokens with iat == validSince stay valid.
    time.sleep(1.1)
    auth.revoke_refresh_tokens(user.uid, app=app)
    with pytest.raises(auth.RevokedIdTokenError):
        auth.verify_id_token(token, check_revoked=True, app=app)
    # Without the revocation check the token itself is still well-formed and unexpired.
    assert auth.verify_id_token(token, app=app)["uid"] == user.uid

    fresh = fk.sign_in(fk.EMU_URL, fk.EMU_API_KEY, email, PASSWORD)["idToken"]
    assert auth.verify_id_token(fresh, check_revoked=True, app=app)["uid"] == user.uid

    auth.update_user(user.uid, disabled=True, app=app)
    with pytest.raises(auth.UserDisabledError):
        auth.verify_id_token(fresh, check_revoked=True, app=app)


def test_custom_token_sign_in_through_node_client(app):
    uid = fk.unique_uid("py-custom")
    token = auth.create_custom_token(uid, {"role": "x"}, app=app)
    header, payload = fk.decode_unverified(token)
    assert header["alg"] == "none"
    assert payload["uid"] == uid
    assert payload["claims"] == {"role": "x"}

    result = fk.node_sign_in_with_custom_token(fk.EMU_URL, fk.EMU_API_KEY, token)
    assert result["uid"] == uid
    assert result["claims"]["role"] == "x"
    assert result["claims"]["firebase"]["sign_in_provider"] == "custom"
    assert result["claims"]["sub"] == uid

    user = auth.get_user(uid, app=app)
    assert user.uid == uid
    # Custom-token claims belong to the session, not to the user record.
    assert user.custom_claims is None
