// firebase-admin (Node) against a Firekeeper server in default (production) mode:
// - custom tokens signed with a service account created by the Firekeeper CLI (the Node SDK
//   sends no `kid`) sign in through the JS client;
// - RS256 ID tokens verify once the SDK's token verifier is pointed at the server's key URL
//   (the SDK has no public option for it; see sdk-clients.md §3.3).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cert, deleteApp, initializeApp } from 'firebase-admin/app';
import { getAuth } from 'firebase-admin/auth';
import { createUserWithEmailAndPassword, signInWithCustomToken } from 'firebase/auth';
import { clientAuth, decodeJwt, expectAuthError, MODES, PROJECT, uniqueEmail } from './helpers.mjs';

const mode = MODES.find((m) => m.name === 'default');
const saFile = process.env.FK_PROD_SA_FILE;
const skip = mode.skip || (!saFile && 'FK_PROD_SA_FILE is not set (run interop/run.sh)');

const ID_KEYS_PATH = '/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com';
const COOKIE_KEYS_PATH = '/identitytoolkit/v3/relyingparty/publicKeys';

describe('firebase-admin (Node) in default mode', { skip }, () => {
  let app;
  let admin;

  before(() => {
    // This file runs in its own process: make sure nothing switches the SDK to emulator mode.
    delete process.env.FIREBASE_AUTH_EMULATOR_HOST;
    const serviceAccount = JSON.parse(readFileSync(saFile, 'utf8'));
    app = initializeApp(
      { credential: cert(serviceAccount), projectId: PROJECT },
      `fk-admin-default-${process.pid}`,
    );
    admin = getAuth(app);

    // Replace the verifiers (plain properties at run time) with ones that fetch the
    // server's keys; firebase-admin's package exports block the deep import by name.
    const require = createRequire(import.meta.url);
    const tv = require(
      path.join(path.dirname(require.resolve('firebase-admin')), 'auth', 'token-verifier.js'),
    );
    admin.idTokenVerifier = new tv.FirebaseTokenVerifier(
      mode.url + ID_KEYS_PATH,
      'https://securetoken.google.com/',
      tv.ID_TOKEN_INFO,
      app,
    );
    admin.sessionCookieVerifier = new tv.FirebaseTokenVerifier(
      mode.url + COOKIE_KEYS_PATH,
      'https://session.firebase.google.com/',
      tv.SESSION_COOKIE_INFO,
      app,
    );
  });

  after(async () => {
    if (app) await deleteApp(app);
  });

  it('verifyIdToken accepts an RS256 client token and rejects a tampered one', async () => {
    const ctx = clientAuth(mode.url, mode.apiKey);
    try {
      const email = uniqueEmail('node-admin-rs256');
      const cred = await createUserWithEmailAndPassword(ctx.auth, email, 'rs256-Password-1');
      const token = await cred.user.getIdToken();
      const { header } = decodeJwt(token);
      assert.equal(header.alg, 'RS256');
      assert.ok(header.kid);

      const decoded = await admin.verifyIdToken(token);
      assert.equal(decoded.uid, cred.user.uid);
      assert.equal(decoded.aud, PROJECT);
      assert.equal(decoded.iss, `https://securetoken.google.com/${PROJECT}`);
      assert.equal(decoded.email, email);
      assert.equal(decoded.firebase.sign_in_provider, 'password');

      // Same header and signature, different subject: the signature no longer matches.
      const [h, p, s] = token.split('.');
      const payload = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
      payload.sub = payload.user_id = 'someone-else';
      const forged = `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`;
      await expectAuthError(admin.verifyIdToken(forged), ['auth/argument-error'], 'forged token');

      // An unsigned (emulator-style) token is not accepted outside emulator mode.
      const unsigned = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${p}.`;
      await expectAuthError(admin.verifyIdToken(unsigned), ['auth/argument-error'], 'unsigned token');
    } finally {
      await ctx.close();
    }
  });

  it('createCustomToken (RS256, no kid) signs in through the client', async () => {
    const uid = `node-sa-${Date.now()}`;
    const token = await admin.createCustomToken(uid, { plan: 'pro', seats: 3 });
    const { header, payload } = decodeJwt(token);
    assert.equal(header.alg, 'RS256');
    assert.equal(header.kid, undefined, 'the Node SDK sends no kid');
    assert.equal(payload.uid, uid);

    const ctx = clientAuth(mode.url, mode.apiKey);
    try {
      const cred = await signInWithCustomToken(ctx.auth, token);
      assert.equal(cred.user.uid, uid);
      const result = await cred.user.getIdTokenResult();
      assert.equal(result.signInProvider, 'custom');
      assert.equal(result.claims.plan, 'pro');
      assert.equal(result.claims.seats, 3);
      const decoded = await admin.verifyIdToken(result.token);
      assert.equal(decoded.uid, uid);
      assert.equal(decoded.plan, 'pro');
    } finally {
      await ctx.close();
    }
  });
});
