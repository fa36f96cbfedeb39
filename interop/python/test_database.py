"""firebase-admin (Python) `db` module against Firekeeper's database port in emulator mode.

FIREBASE_DATABASE_EMULATOR_HOST points the module at the server; the namespace comes from
the databaseURL's first label and travels as ?ns=. Each run uses a fresh namespace.
"""

import json
import os
import uuid

import firebase_admin
import pytest
import requests
from firebase_admin import db, exceptions

import fkinterop as fk

DB_HOST = os.environ.get("FK_EMU_DB_HOST", "")
pytestmark = pytest.mark.skipif(
    not DB_HOST or fk.EMU_IS_REFERENCE,
    reason="FK_EMU_DB_HOST is not set (run interop/run.sh) or the emulator is the reference one")

RULES = {
    "rules": {
        "dinos": {".indexOn": ["height"], "$d": {".indexOn": ".value"}},
        "scores": {".indexOn": ".value"},
        "users": {
            "$uid": {
                ".read": "auth != null && auth.uid == $uid",
                ".write": "auth != null && auth.uid == $uid",
                ".validate": "newData.hasChildren(['name'])",
                "name": {".validate": "newData.isString() && newData.val().length <= 20"},
            }
        },
    }
}


@pytest.fixture(scope="module")
def ns():
    name = f"fk-{uuid.uuid4().hex[:10]}"
    res = requests.put(f"http://{DB_HOST}/.settings/rules.json", params={"ns": name},
                       headers={"Authorization": "Bearer owner"}, data=json.dumps(RULES),
                       timeout=fk.TIMEOUT)
    assert res.status_code == 200, res.text
    return name


def make_app(ns, override=None):
    options = {"projectId": fk.PROJECT, "databaseURL": f"https://{ns}.firebaseio.com"}
    if override is not None:
        options["databaseAuthVariableOverride"] = override
    return firebase_admin.initialize_app(options=options, name=f"fk-db-{uuid.uuid4().hex}")


@pytest.fixture(scope="module")
def app(ns):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FIREBASE_DATABASE_EMULATOR_HOST", DB_HOST)
        the_app = make_app(ns)
        try:
            yield the_app
        finally:
            firebase_admin.delete_app(the_app)


def test_set_get_update_push_delete(app):
    ref = db.reference("things", app=app)
    ref.set({"a": 1, "b": {"c": "x"}, "list": [1, 2, 3]})
    assert ref.get() == {"a": 1, "b": {"c": "x"}, "list": [1, 2, 3]}
    assert ref.child("b/c").get() == "x"
    ref.update({"a": 2, "b/d": True})
    assert ref.get()["a"] == 2 and ref.child("b").get() == {"c": "x", "d": True}
    first = ref.child("log").push({"n": 1})
    second = ref.child("log").push({"n": 2})
    assert first.key < second.key and len(first.key) == 20
    assert list(ref.child("log").get().keys()) == [first.key, second.key]
    assert ref.get(shallow=True) == {"a": 2, "b": True, "list": True, "log": True}
    ref.child("b").delete()
    assert ref.child("b").get() is None
    ref.child("count").set({".sv": {"increment": 3}})
    ref.child("count").set({".sv": {"increment": 4}})
    assert ref.child("count").get() == 7


def test_ordered_and_limited_queries(app):
    dinos = db.reference("dinos", app=app)
    dinos.set({
        "bruhathkayosaurus": {"height": 25}, "lambeosaurus": {"height": 2.1},
        "linhenykus": {"height": 0.6}, "pterodactyl": {"height": 0.6},
        "stegosaurus": {"height": 4}, "triceratops": {"height": 3},
    })
    tallest = dinos.order_by_child("height").limit_to_last(2).get()
    assert list(tallest.keys()) == ["stegosaurus", "bruhathkayosaurus"]
    small = dinos.order_by_child("height").start_at(0.5).end_at(2.5).get()
    assert list(small.keys()) == ["linhenykus", "pterodactyl", "lambeosaurus"]
    exactly = dinos.order_by_child("height").equal_to(3).get()
    assert list(exactly.keys()) == ["triceratops"]
    by_key = dinos.order_by_key().limit_to_first(2).get()
    assert list(by_key.keys()) == ["bruhathkayosaurus", "lambeosaurus"]
    scores = db.reference("scores", app=app)
    scores.set({"ann": 30, "bob": 10, "cy": 20})
    assert list(scores.order_by_value().limit_to_first(2).get().keys()) == ["bob", "cy"]
    # Ordering by a child without an index is refused, as Firebase does.
    with pytest.raises(exceptions.InvalidArgumentError) as err:
        db.reference("scores", app=app).order_by_child("x").get()
    assert "Index not defined" in str(err.value)


def test_transactions_and_etags(app):
    counter = db.reference("counter", app=app)
    # An absent node: the transaction starts from None.
    assert counter.transaction(lambda v: (v or 0) + 1) == 1
    assert counter.transaction(lambda v: (v or 0) + 1) == 2
    value, etag = counter.get(etag=True)
    assert value == 2 and etag
    changed, _, _ = counter.get_if_changed(etag)
    assert not changed
    ok, _, _ = counter.set_if_unchanged(etag, 10)
    assert ok
    ok, current, new_etag = counter.set_if_unchanged(etag, 11)
    assert not ok and current == 10 and new_etag != etag
    changed, value, _ = counter.get_if_changed(etag)
    assert changed and value == 10


def test_rules_apply_to_an_app_acting_as_a_user(ns):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FIREBASE_DATABASE_EMULATOR_HOST", DB_HOST)
        alice = make_app(ns, override={"uid": "alice"})
        anon = make_app(ns, override=None)
        try:
            mine = db.reference("users/alice", app=alice)
            mine.set({"name": "Alice"})
            assert mine.get() == {"name": "Alice"}
            with pytest.raises(exceptions.UnauthenticatedError) as err:
                db.reference("users/bob", app=alice).set({"name": "Bob"})
            assert "Permission denied" in str(err.value)
            # .validate: a name is required and short.
            with pytest.raises(exceptions.UnauthenticatedError):
                mine.set({"age": 3})
            with pytest.raises(exceptions.UnauthenticatedError):
                mine.child("name").set("a name that is much too long")
            assert mine.get() == {"name": "Alice"}
            # Admin (no override) bypasses the rules.
            assert db.reference("users/alice", app=anon).get() == {"name": "Alice"}
        finally:
            firebase_admin.delete_app(alice)
            firebase_admin.delete_app(anon)


def test_bad_input_is_refused_and_changes_nothing(app, ns):
    base = f"http://{DB_HOST}"
    owner = {"Authorization": "Bearer owner"}
    db.reference("safe", app=app).set({"v": 1})
    cases = [
        ("put", "/safe.json", "{not json", "couldn't parse JSON"),
        ("put", "/safe.json", json.dumps({"a.b": 1}), "Invalid key"),
        ("patch", "/safe.json", json.dumps({"v": 2, "x": {"$bad": 1}}), "Invalid key"),
        ("put", "/safe.json", json.dumps({".sv": "nope"}), "server value"),
        ("put", "/sa%23fe.json", "1", "Invalid path"),
    ]
    deep = 1
    for _ in range(40):
        deep = {"k": deep}
    cases.append(("put", "/safe.json", json.dumps(deep), "deeper"))
    for method, path, body, expected in cases:
        res = requests.request(method, base + path, params={"ns": ns}, headers=owner, data=body,
                               timeout=fk.TIMEOUT)
        assert res.status_code == 400, (path, body[:40], res.text)
        assert expected in res.json()["error"], res.text
    assert db.reference("safe", app=app).get() == {"v": 1}
    res = requests.put(f"{base}/.settings/rules.json", params={"ns": ns}, headers=owner,
                       data='{"rules": {\n  ".read": "auth.uid ==="\n}}', timeout=fk.TIMEOUT)
    assert res.status_code == 400 and "line 2" in res.json()["error"], res.text


def test_listen_streams_the_value_then_each_change(app):
    import threading
    import time

    ref = db.reference("live", app=app)
    ref.set({"a": 1})
    seen = []
    arrived = threading.Event()

    def on_event(event):
        seen.append((event.event_type, event.path, event.data))
        arrived.set()

    registration = ref.listen(on_event)
    try:
        deadline = time.time() + 5
        while len(seen) < 1 and time.time() < deadline:
            arrived.wait(0.05)
        assert seen[0] == ("put", "/", {"a": 1})
        ref.child("b").set({"c": True})
        ref.update({"a": 2})
        ref.child("b").delete()
        while len(seen) < 4 and time.time() < deadline:
            arrived.wait(0.05)
        assert seen[1:4] == [("put", "/b", {"c": True}), ("put", "/a", 2), ("put", "/b", None)], seen
    finally:
        # close() waits for the listener thread, which wakes only when data arrives:
        # a write shortly after lets it end without waiting for the 30 s keep-alive.
        threading.Timer(0.2, lambda: ref.child("wake").set(True)).start()
        registration.close()
