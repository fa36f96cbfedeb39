// firebase-admin (Node) in emulator mode (FIREBASE_AUTH_EMULATOR_HOST) together with the JS
// client, against a Firekeeper server started with --emulator. The Node Admin SDK forces a
// revocation check on every verifyIdToken in emulator mode, comparing auth_time with
// tokensValidAfterTime, so these tests also pin down auth_time handling.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { deleteApp, initializeApp } from 'firebase-admin/app';
import { getAuth } from 'firebase-admin/auth';
import {
  createUserWithEmailAndPassword,
  signInWithCustomToken,
  signInWithEmailAndPassword,
  updatePassword,
} from 'firebase/auth';
import {
  clientAuth,
  decodeJwt,
  EMU_IS_REFERENCE,
  expectAuthError,
  MODES,
  PROJECT,
  sleep,
  uniqueEmail,
} from './helpers.mjs';

const mode = MODES.find((m) => m.name === 'emulator');
const PASSWORD = 'admin-Password-1';

describe('firebase-admin (Node) in emulator mode', { skip: mode.skip }, () => {
  let app;
  let admin;

  before(() => {
    // Read by the Admin SDK when it builds its Auth client and on each call; this test
    // file runs in its own process, so setting it here affects nothing else.
    process.env.FIREBASE_AUTH_EMULATOR_HOST = new URL(mode.url).host;
    app = initializeApp({ projectId: PROJECT }, `fk-admin-emu-${process.pid}`);
    admin = getAuth(app);
  });

  after(async () => {
    if (app) await deleteApp(app);
  });

  async function withClient(fn) {
    const ctx = clientAuth(mode.url, mode.apiKey);
    try {
      return await fn(ctx);
    } finally {
      await ctx.close();
    }
  }

  it('verifyIdToken accepts a client token and rejects it after revokeRefreshTokens', async () => {
    await withClient(async ({ auth }) => {
      const email = uniqueEmail('node-admin-revoke');
      const cred = await createUserWithEmailAndPassword(auth, email, PASSWORD);
      const token = await cred.user.getIdToken();
      const decoded = await admin.verifyIdToken(token);
      assert.equal(decoded.uid, cred.user.uid);
      assert.equal(decoded.email, email);
      assert.equal(decoded.firebase.sign_in_provider, 'password');

      // tokensValidAfterTime has one-second resolution.
      await sleep(1100);
      await admin.revokeRefreshTokens(cred.user.uid);
      const user = await admin.getUser(cred.user.uid);
      const validAfter = Date.parse(user.tokensValidAfterTime);
      assert.ok(validAfter > decoded.auth_time * 1000, 'revocation moved tokensValidAfterTime');
      await expectAuthError(admin.verifyIdToken(token), ['auth/id-token-revoked'], 'verify after revoke');

      // A new sign-in is valid again.
      const again = await signInWithEmailAndPassword(auth, email, PASSWORD);
      const fresh = await admin.verifyIdToken(await again.user.getIdToken());
      assert.equal(fresh.uid, cred.user.uid);
    });
  });

  it(
    "tokens returned by the user's own password change pass the auth_time revocation check",
    { skip: EMU_IS_REFERENCE && 'reference emulator keeps the old auth_time on password change' },
    async () => {
      await withClient(async ({ auth }) => {
        const cred = await createUserWithEmailAndPassword(auth, uniqueEmail('node-admin-pw'), PASSWORD);
        await sleep(1100);
        await updatePassword(cred.user, 'changed-Password-2');
        const token = await auth.currentUser.getIdToken();
        const decoded = await admin.verifyIdToken(token);
        assert.equal(decoded.uid, cred.user.uid);
        const user = await admin.getUser(cred.user.uid);
        assert.ok(
          decoded.auth_time * 1000 >= Date.parse(user.tokensValidAfterTime),
          'auth_time of the changing device is not before validSince',
        );
      });
    },
  );

  it('setCustomUserClaims appears in refreshed client tokens', async () => {
    await withClient(async ({ auth }) => {
      const cred = await createUserWithEmailAndPassword(auth, uniqueEmail('node-admin-claims'), PASSWORD);
      await admin.setCustomUserClaims(cred.user.uid, { role: 'editor', level: 2 });
      const user = await admin.getUser(cred.user.uid);
      assert.deepEqual(user.customClaims, { role: 'editor', level: 2 });
      const result = await cred.user.getIdTokenResult(true);
      assert.equal(result.claims.role, 'editor');
      assert.equal(result.claims.level, 2);
      const decoded = await admin.verifyIdToken(result.token);
      assert.equal(decoded.role, 'editor');
    });
  });

  it('createCustomToken signs in through the client with its claims', async () => {
    const uid = `node-custom-${Date.now()}`;
    const token = await admin.createCustomToken(uid, { tier: 'gold' });
    const { header, payload } = decodeJwt(token);
    assert.equal(header.alg, 'none', 'emulator-mode custom tokens are unsigned');
    assert.equal(payload.uid, uid);
    await withClient(async ({ auth }) => {
      const cred = await signInWithCustomToken(auth, token);
      assert.equal(cred.user.uid, uid);
      const result = await cred.user.getIdTokenResult();
      assert.equal(result.signInProvider, 'custom');
      assert.equal(result.claims.tier, 'gold');
      const decoded = await admin.verifyIdToken(result.token);
      assert.equal(decoded.uid, uid);
      assert.equal(decoded.tier, 'gold');
    });
    const user = await admin.getUser(uid);
    assert.equal(user.uid, uid);
  });

  it('a disabled user is refused by the client and by verifyIdToken', async () => {
    await withClient(async ({ auth }) => {
      const email = uniqueEmail('node-admin-disabled');
      const cred = await createUserWithEmailAndPassword(auth, email, PASSWORD);
      const token = await cred.user.getIdToken();
      await admin.updateUser(cred.user.uid, { disabled: true });
      await expectAuthError(admin.verifyIdToken(token), ['auth/user-disabled'], 'verify of a disabled user');
      await expectAuthError(
        cred.user.getIdToken(true),
        ['auth/user-disabled'],
        'refresh of a disabled user',
      );
      await expectAuthError(
        signInWithEmailAndPassword(auth, email, PASSWORD),
        ['auth/user-disabled'],
        'sign-in of a disabled user',
      );
    });
  });
});
