// The seed's "detect ID token revocation in database rules" scenario end to end, over the
// database's REST port with real ID tokens from the JS client (`firebase/auth`): the user
// reads and writes users/$uid; an admin revokes the user's tokens; the old token's next read
// is refused with "Permission denied" and an open stream on the path ends within a second;
// after a new sign-in, access works. The revocation bridge also writes
// metadata/$uid/revokeTime, which the seed's rules compare with auth_time: set server-wide
// in the default-mode server, by the project's databasePolicy in the emulator-mode one.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createUserWithEmailAndPassword, signInWithEmailAndPassword } from 'firebase/auth';
import {
  adminTokenFor,
  clientAuth,
  EMU_IS_REFERENCE,
  MODES,
  PROJECT,
  revokeTokensRest,
  sleep,
  uniqueEmail,
} from './helpers.mjs';

const PASSWORD = 'database-Password-1';
const SEED_RULE =
  "auth != null && $user_id === auth.uid && (!root.child('metadata').child(auth.uid).child('revokeTime').exists() || auth.token.auth_time > root.child('metadata').child(auth.uid).child('revokeTime').val())";
const RULES = { rules: { users: { $user_id: { '.read': SEED_RULE, '.write': SEED_RULE } } } };
const DB_HOSTS = { emulator: process.env.FK_EMU_DB_HOST, default: process.env.FK_PROD_DB_HOST };

// A stream's events as they arrive: [{event, data}], plus a way to wait for one.
function openStream(url) {
  const events = [];
  const controller = new AbortController();
  let ended = false;
  const ready = fetch(url, { headers: { accept: 'text/event-stream' }, signal: controller.signal }).then(
    async (res) => {
      assert.equal(res.status, 200, `stream: ${res.status}`);
      assert.match(res.headers.get('content-type'), /^text\/event-stream/);
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let buffer = '';
      (async () => {
        try {
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            buffer += decoder.decode(value, { stream: true });
            let cut;
            while ((cut = buffer.indexOf('\n\n')) >= 0) {
              const block = buffer.slice(0, cut);
              buffer = buffer.slice(cut + 2);
              const event = /^event: (.*)$/m.exec(block)?.[1];
              const data = /^data: (.*)$/m.exec(block)?.[1];
              events.push({ event, data, at: Date.now() });
            }
          }
        } catch {
          // aborted
        }
        ended = true;
      })();
    },
  );
  return {
    events,
    ready,
    ended: () => ended,
    close: () => controller.abort(),
    async waitFor(pred, ms) {
      const deadline = Date.now() + ms;
      while (Date.now() < deadline) {
        const found = events.find(pred);
        if (found) return found;
        await sleep(10);
      }
      throw new Error(`no matching event within ${ms} ms: ${JSON.stringify(events)}`);
    },
  };
}

for (const mode of MODES) {
  const host = DB_HOSTS[mode.name];
  const skip = mode.skip || (!host && 'the database port is not set') || (EMU_IS_REFERENCE && 'reference emulator');
  describe(`database rules see revocation (${mode.name} mode)`, { skip }, () => {
    const ns = `${PROJECT}-default-rtdb`;
    const db = (path, token) =>
      `http://${host}/${path}.json?ns=${ns}${token ? `&auth=${encodeURIComponent(token)}` : ''}`;

    it('revoked tokens lose access at once and a new sign-in regains it', async () => {
      const admin = adminTokenFor(mode);
      let res = await fetch(`http://${host}/.settings/rules.json?ns=${ns}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${admin}` },
        body: JSON.stringify(RULES),
      });
      assert.equal(res.status, 200, await res.text());

      // The emulator-mode server has no server-wide bridge: this project sets its own.
      if (mode.name === 'emulator') {
        const patched = await fetch(`${mode.url}/firekeeper/v1/projects/${PROJECT}/config`, {
          method: 'PATCH',
          headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
          body: JSON.stringify({ databasePolicy: { revocationPath: 'metadata/$uid/revokeTime' } }),
        });
        assert.equal(patched.status, 200, await patched.text());
      }

      const client = clientAuth(mode.url, mode.apiKey);
      try {
        const email = uniqueEmail('db');
        const cred = await createUserWithEmailAndPassword(client.auth, email, PASSWORD);
        const uid = cred.user.uid;
        const token = await cred.user.getIdToken();
        res = await fetch(db(`users/${uid}`, token), { method: 'PUT', body: JSON.stringify({ note: 'mine' }) });
        assert.equal(res.status, 200, await res.text());
        res = await fetch(db(`users/${uid}`, token));
        assert.deepEqual(await res.json(), { note: 'mine' });
        // Someone else's node, and no token at all, are refused.
        res = await fetch(db('users/someone-else', token));
        assert.equal(res.status, 401);
        assert.deepEqual(await res.json(), { error: 'Permission denied' });
        res = await fetch(db(`users/${uid}`));
        assert.equal(res.status, 401);

        const stream = openStream(db(`users/${uid}`, token));
        await stream.ready;
        const first = await stream.waitFor((e) => e.event === 'put', 2000);
        assert.deepEqual(JSON.parse(first.data), { path: '/', data: { note: 'mine' } });
        res = await fetch(db(`users/${uid}/note`, token), { method: 'PUT', body: '"changed"' });
        assert.equal(res.status, 200);
        const change = await stream.waitFor((e) => e.event === 'put' && e.data.includes('changed'), 2000);
        assert.deepEqual(JSON.parse(change.data), { path: '/note', data: 'changed' });

        // validSince has one-second resolution: let the token's auth_time fall behind it.
        await sleep(1100);
        const revokedAt = Date.now();
        res = await revokeTokensRest(mode, uid);
        assert.equal(res.status, 200, JSON.stringify(res.body));
        const end = await stream.waitFor((e) => e.event === 'auth_revoked' || e.event === 'cancel', 1000);
        assert.ok(end.at - revokedAt < 1000, `the stream ended ${end.at - revokedAt} ms after the revocation`);
        if (end.event === 'auth_revoked') assert.equal(end.data, 'credential is no longer valid');
        stream.close();

        res = await fetch(db(`users/${uid}`, token));
        assert.equal(res.status, 401);
        assert.deepEqual(await res.json(), { error: 'Permission denied' });
        res = await fetch(db(`users/${uid}`, token), { method: 'PUT', body: '{"note": "late"}' });
        assert.equal(res.status, 401);

        {
          // The bridge wrote the revocation time (seconds) where the seed's rules look.
          let written = null;
          for (let i = 0; i < 50 && written === null; i += 1) {
            res = await fetch(`http://${host}/metadata/${uid}/revokeTime.json?ns=${ns}`, {
              headers: { authorization: `Bearer ${admin}` },
            });
            written = await res.json();
            if (written === null) await sleep(20);
          }
          assert.equal(typeof written, 'number');
          assert.ok(Math.abs(written - Math.floor(revokedAt / 1000)) <= 1, `revokeTime ${written}`);
        }

        // A new sign-in, a second later than the revocation, reads again.
        await sleep(1100);
        const again = await signInWithEmailAndPassword(client.auth, email, PASSWORD);
        const fresh = await again.user.getIdToken(true);
        res = await fetch(db(`users/${uid}`, fresh));
        assert.equal(res.status, 200);
        assert.deepEqual(await res.json(), { note: 'changed' });
      } finally {
        await client.close();
      }
    });
  });
}
