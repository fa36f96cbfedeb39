// Session flows of the seed "manage user sessions" with the real JS client (`firebase/auth`)
// in both server modes: a revocation signs the client out (reload, forced refresh), and
// Firekeeper's self-service "sign out everywhere else". Then firebase-admin (Node) in
// emulator mode: verifyIdToken(token, true) for revoked and disabled users.
//
// Tokens are revoked the way the Admin SDKs do it: accounts:update with validSince = now,
// with the mode's admin Bearer token (`owner` in emulator mode).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { deleteApp, initializeApp } from 'firebase-admin/app';
import { getAuth } from 'firebase-admin/auth';
import { createUserWithEmailAndPassword, signInWithEmailAndPassword, signOut } from 'firebase/auth';
import {
  adminTokenFor,
  clientAuth,
  decodeJwt,
  EMU_IS_REFERENCE,
  expectAuthError,
  fkSessionPost,
  MODES,
  PROJECT,
  revokeTokensRest,
  sleep,
  uniqueEmail,
} from './helpers.mjs';

const PASSWORD = 'session-Password-1';
const REFERENCE_SKIP =
  EMU_IS_REFERENCE && 'the reference emulator ignores validSince on refresh and has no session API';

async function withClient(mode, fn) {
  const ctx = clientAuth(mode.url, mode.apiKey);
  try {
    return await fn(ctx);
  } finally {
    await ctx.close();
  }
}

async function revoke(mode, uid) {
  const res = await revokeTokensRest(mode, uid);
  assert.equal(res.status, 200, `accounts:update validSince: ${res.status} ${JSON.stringify(res.body)}`);
  assert.equal(res.body.localId, uid);
}

for (const base of MODES) {
  const mode = {
    ...base,
    skip:
      base.skip ||
      (base.name === 'default' && !process.env.FK_PROD_ADMIN_TOKEN && 'FK_PROD_ADMIN_TOKEN is not set') ||
      (base.name === 'emulator' && REFERENCE_SKIP),
  };

  describe(`session revocation with firebase/auth, ${mode.name} mode`, { skip: mode.skip }, () => {
    it('reload() after a revocation rejects with auth/user-token-expired and signs out', async () => {
      await withClient(mode, async ({ auth }) => {
        const email = uniqueEmail('sess-reload');
        const created = await createUserWithEmailAndPassword(auth, email, PASSWORD);
        const uid = created.user.uid;
        await signOut(auth);
        const cred = await signInWithEmailAndPassword(auth, email, PASSWORD);
        assert.equal(cred.user.uid, uid);
        // A reload before the revocation works.
        await auth.currentUser.reload();
        assert.equal(auth.currentUser?.uid, uid);

        // validSince has one-second resolution: the session must be older than it.
        await sleep(1100);
        await revoke(mode, uid);
        await expectAuthError(
          auth.currentUser.reload(),
          ['auth/user-token-expired'],
          'reload after the revocation',
        );
        assert.equal(auth.currentUser, null, 'the client signs out on TOKEN_EXPIRED');

        const again = await signInWithEmailAndPassword(auth, email, PASSWORD);
        assert.equal(again.user.uid, uid);
        assert.equal(auth.currentUser?.uid, uid);
        const token = await again.user.getIdToken(true);
        assert.equal(decodeJwt(token).payload.sub, uid);
      });
    });

    it('getIdToken(true) after a revocation rejects with auth/user-token-expired', async () => {
      await withClient(mode, async ({ auth }) => {
        const cred = await createUserWithEmailAndPassword(auth, uniqueEmail('sess-refresh'), PASSWORD);
        const uid = cred.user.uid;
        const first = await cred.user.getIdToken(true);
        assert.equal(decodeJwt(first).payload.sub, uid);

        await sleep(1100);
        await revoke(mode, uid);
        await expectAuthError(
          cred.user.getIdToken(true),
          ['auth/user-token-expired'],
          'forced refresh after the revocation',
        );
        assert.equal(auth.currentUser, null, 'the client signs out on TOKEN_EXPIRED');
      });
    });

    it('sessions:revokeOthers signs out the other device and keeps the caller', async () => {
      const email = uniqueEmail('sess-others');
      await withClient(mode, async ({ auth: a }) => {
        await withClient(mode, async ({ auth: b }) => {
          const created = await createUserWithEmailAndPassword(a, email, PASSWORD);
          const uid = created.user.uid;
          const other = await signInWithEmailAndPassword(b, email, PASSWORD);
          assert.equal(other.user.uid, uid);

          const tokenA = await a.currentUser.getIdToken();
          const sidA = decodeJwt(tokenA).payload.sid;
          const sidB = decodeJwt(await b.currentUser.getIdToken()).payload.sid;
          assert.ok(typeof sidA === 'string' && sidA.length > 0, `sid claim of A: ${sidA}`);
          assert.ok(typeof sidB === 'string' && sidB.length > 0, `sid claim of B: ${sidB}`);
          assert.notEqual(sidA, sidB);

          const listed = await fkSessionPost(mode.url, 'sessions:list', mode.apiKey, { idToken: tokenA });
          assert.equal(listed.status, 200, `sessions:list: ${JSON.stringify(listed.body)}`);
          assert.deepEqual(listed.body.sessions.map((s) => s.sessionId).sort(), [sidA, sidB].sort());

          const res = await fkSessionPost(mode.url, 'sessions:revokeOthers', mode.apiKey, { idToken: tokenA });
          assert.equal(res.status, 200, `sessions:revokeOthers: ${JSON.stringify(res.body)}`);
          assert.equal(res.body.revoked, 1);

          await expectAuthError(
            b.currentUser.getIdToken(true),
            ['auth/user-token-expired'],
            'refresh on the other device after revokeOthers',
          );
          assert.equal(b.currentUser, null, 'the other device is signed out');

          // (Within the same second the refreshed token may equal tokenA byte for byte.)
          const refreshed = await a.currentUser.getIdToken(true);
          assert.equal(decodeJwt(refreshed).payload.sub, uid);
          assert.equal(decodeJwt(refreshed).payload.sid, sidA, 'the caller keeps its session');
          assert.equal(a.currentUser?.uid, uid);

          const left = await fkSessionPost(mode.url, 'sessions:list', mode.apiKey, { idToken: refreshed });
          assert.equal(left.status, 200, `sessions:list: ${JSON.stringify(left.body)}`);
          assert.deepEqual(left.body.sessions.map((s) => [s.sessionId, s.current]), [[sidA, true]]);
        });
      });
    });
  });
}

const emu = MODES.find((m) => m.name === 'emulator');

describe('firebase-admin (Node) verifyIdToken(token, true), emulator mode', { skip: emu.skip }, () => {
  let app;
  let admin;
  let previousHost;

  before(() => {
    // This file runs in its own process; the client SDK ignores this variable.
    previousHost = process.env.FIREBASE_AUTH_EMULATOR_HOST;
    process.env.FIREBASE_AUTH_EMULATOR_HOST = new URL(emu.url).host;
    app = initializeApp({ projectId: PROJECT }, `fk-sessions-admin-${process.pid}`);
    admin = getAuth(app);
  });

  after(async () => {
    if (app) await deleteApp(app);
    if (previousHost === undefined) delete process.env.FIREBASE_AUTH_EMULATOR_HOST;
    else process.env.FIREBASE_AUTH_EMULATOR_HOST = previousHost;
  });

  it('rejects a token issued before revokeRefreshTokens with auth/id-token-revoked', async () => {
    await withClient(emu, async ({ auth }) => {
      const cred = await createUserWithEmailAndPassword(auth, uniqueEmail('sess-admin-revoke'), PASSWORD);
      const uid = cred.user.uid;
      const token = await cred.user.getIdToken();
      assert.equal((await admin.verifyIdToken(token, true)).uid, uid);

      await sleep(1100);
      await admin.revokeRefreshTokens(uid);
      await expectAuthError(admin.verifyIdToken(token, true), ['auth/id-token-revoked'], 'verify after revoke');
      const user = await admin.getUser(uid);
      const validAfter = Date.parse(user.tokensValidAfterTime);
      assert.ok(
        validAfter > decodeJwt(token).payload.iat * 1000 && Math.abs(validAfter - Date.now()) < 5000,
        `tokensValidAfterTime ${user.tokensValidAfterTime}`,
      );
    });
  });

  it('rejects the token of a disabled user with auth/user-disabled', async () => {
    await withClient(emu, async ({ auth }) => {
      const cred = await createUserWithEmailAndPassword(auth, uniqueEmail('sess-admin-disabled'), PASSWORD);
      const token = await cred.user.getIdToken();
      assert.equal((await admin.verifyIdToken(token, true)).uid, cred.user.uid);
      const updated = await admin.updateUser(cred.user.uid, { disabled: true });
      assert.equal(updated.disabled, true);
      await expectAuthError(admin.verifyIdToken(token, true), ['auth/user-disabled'], 'verify of a disabled user');
    });
  });
});
