// Blocking functions written with the real firebase-functions package (handlers.mjs, v1 and
// v2 APIs) called by Firekeeper, driven by the real firebase JS client.
//
//   npm ci --prefix interop/functions
//   FK_BIN=target/debug/firekeeper node --test interop/functions/blocking.test.mjs
//
// Starts its own servers (FK_BIN, free loopback ports, temporary data dirs): one with
// --emulator, where firebase-functions runs in Admin emulator mode (FIREBASE_AUTH_EMULATOR_HOST
// set: unsigned JWTs), and one in default mode, where it verifies RS256 JWTs with the Admin
// SDK's authBlockingTokenVerifier pointed at the server's ID-token key URL. Triggers are
// registered with the v2 config API and a per-trigger `audience` (a Firekeeper extension)
// that firebase-functions accepts: `<project>.cloudfunctions.net/` for v1, `run.app` for v2.
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

const PROJECT = process.env.FK_PROJECT || 'demo-firekeeper';
// firebase-functions reads the project from GCLOUD_PROJECT (context.resource) and builds its
// Admin app from it; set it before the package is loaded.
process.env.GCLOUD_PROJECT = PROJECT;
delete process.env.FIREBASE_CONFIG;
delete process.env.FIREBASE_DEBUG_MODE;
delete process.env.FIREBASE_DEBUG_FEATURES;
delete process.env.FIREBASE_AUTH_EMULATOR_HOST;

const { cert, deleteApp, initializeApp } = await import('firebase-admin/app');
const { getAuth: adminGetAuth } = await import('firebase-admin/auth');
const { deleteApp: deleteClientApp, initializeApp: initializeClientApp } = await import(
  'firebase/app'
);
const {
  connectAuthEmulator,
  getAuth,
  createUserWithEmailAndPassword,
  OAuthProvider,
  sendPasswordResetEmail,
  sendSignInLinkToEmail,
  signInAnonymously,
  signInWithCredential,
  signInWithCustomToken,
  signInWithEmailAndPassword,
  signOut,
  updateProfile,
} = await import('firebase/auth');
const H = await import('./handlers.mjs');

const FK_BIN = process.env.FK_BIN
  ? path.resolve(process.cwd(), process.env.FK_BIN)
  : path.resolve(import.meta.dirname, '../../target/debug/firekeeper');
const ID_KEYS_PATH = '/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com';
const PASSWORD = 'blocking-Password-1';
const DEADLINE_MS = 7000;
const TEST_TIMEOUT = 40_000;

// The Admin app firebase-functions verifies JWTs with (it uses the default app if one exists).
const defaultAdminApp = initializeApp({ projectId: PROJECT });

// --- Firekeeper servers ---

async function startFirekeeper(emulator) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fk-blocking-'));
  const dataDir = path.join(dir, 'data');
  const cli = (...args) =>
    execFileSync(FK_BIN, [...args, '--data-dir', dataDir, '--project', PROJECT], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    }).trim();
  const server = { emulator, dir, log: '' };
  if (!emulator) {
    server.apiKey = cli('api-keys', 'create');
    server.adminToken = cli('admin-tokens', 'create');
    server.saFile = path.join(dir, 'service-account.json');
    cli('service-accounts', 'create', '--out', server.saFile);
  } else {
    server.apiKey = 'fk-blocking-any-key';
    server.adminToken = 'owner';
  }
  const args = ['serve', '--listen', '127.0.0.1:0', '--rtdb-listen', '127.0.0.1:0', '--data-dir', dataDir, '--project', PROJECT];
  if (emulator) args.push('--emulator');
  const child = spawn(FK_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  server.child = child;
  server.url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server not ready:\n${server.log}`)), 60_000);
    const onData = (chunk) => {
      server.log += chunk.toString();
      const m = server.log.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code}):\n${server.log}`));
    });
  });
  server.stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  return server;
}

async function adminFetch(server, urlPath, { method = 'GET', body } = {}) {
  const res = await fetch(`${server.url}${urlPath}`, {
    method,
    headers: {
      authorization: `Bearer ${server.adminToken}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

const CONFIG_PATH = `/identitytoolkit.googleapis.com/v2/projects/${PROJECT}/config`;

// The audience firebase-functions accepts for a handler path (v1: cloudfunctions.net; v2:
// a Cloud Run URL).
function audienceFor(handlerPath) {
  const name = handlerPath.replace(/^\//, '').replace(/\//g, '-');
  return handlerPath.startsWith('/v2/')
    ? `https://${name}-x7k2p9qa-uc.a.run.app`
    : `https://us-central1-${PROJECT}.cloudfunctions.net/${name}`;
}

// Registers handler paths as the project's triggers (replacing the whole map).
async function setTriggers(server, handlersUrl, { beforeCreate, beforeSignIn, beforeSendEmail }, { audience = true } = {}) {
  const triggers = {};
  for (const [event, p] of Object.entries({ beforeCreate, beforeSignIn, beforeSendEmail })) {
    if (!p) continue;
    assert.equal(H.handlerEvent(p), event, `${p} is a ${H.handlerEvent(p)} handler`);
    triggers[event] = { functionUri: handlersUrl + p };
    if (audience) triggers[event].audience = audienceFor(p);
  }
  const res = await adminFetch(server, `${CONFIG_PATH}?updateMask=blockingFunctions.triggers`, {
    method: 'PATCH',
    body: { blockingFunctions: { triggers } },
  });
  assert.equal(res.status, 200, `config PATCH: ${JSON.stringify(res.body)}`);
  return res.body;
}

async function lookup(server, query) {
  const res = await adminFetch(
    server,
    `/identitytoolkit.googleapis.com/v1/projects/${PROJECT}/accounts:lookup`,
    { method: 'POST', body: query },
  );
  assert.equal(res.status, 200, `lookup: ${JSON.stringify(res.body)}`);
  return res.body.users?.[0];
}
const userByEmail = (server, email) => lookup(server, { email: [email] });
const userByUid = (server, uid) => lookup(server, { localId: [uid] });

async function adminUpdate(server, body) {
  const res = await adminFetch(
    server,
    `/identitytoolkit.googleapis.com/v1/projects/${PROJECT}/accounts:update`,
    { method: 'POST', body },
  );
  assert.equal(res.status, 200, `accounts:update: ${JSON.stringify(res.body)}`);
}

function storedClaims(user) {
  return user.customAttributes ? JSON.parse(user.customAttributes) : {};
}

// --- JS client ---

let appCounter = 0;
async function withClient(server, fn) {
  appCounter += 1;
  const app = initializeClientApp(
    { apiKey: server.apiKey, projectId: PROJECT, authDomain: `${PROJECT}.firebaseapp.com` },
    `fk-blocking-${process.pid}-${appCounter}`,
  );
  const auth = getAuth(app);
  connectAuthEmulator(auth, server.url, { disableWarnings: true });
  try {
    return await fn(auth);
  } finally {
    await deleteClientApp(app);
  }
}

function decodeJwt(token) {
  const [h, p, s] = token.split('.');
  const dec = (x) => JSON.parse(Buffer.from(x, 'base64url').toString('utf8'));
  return { header: dec(h), payload: dec(p), signature: s };
}
const tokenClaims = async (user, force = false) => decodeJwt(await user.getIdToken(force)).payload;

function uniqueEmail(tag, domain = 'example.com') {
  return `${tag}-${Date.now()}-${randomBytes(3).toString('hex')}@${domain}`;
}

async function rejection(promise, what) {
  try {
    const v = await promise;
    assert.fail(`${what}: expected a rejection, got ${v}`);
  } catch (err) {
    if (err instanceof assert.AssertionError) throw err;
    return err;
  }
}

// The client's error for a function that answered an HttpsError: the JS client maps
// BLOCKING_FUNCTION_ERROR_RESPONSE to auth/internal-error, with the text after " : "
// (production form: "HTTP Cloud Function returned an error: <body>") as the message.
async function expectBlocked(promise, status, message, what) {
  const err = await rejection(promise, what);
  assert.equal(err.code, 'auth/internal-error', `${what}: ${err.code}: ${err.message}`);
  const prefix = 'Firebase: HTTP Cloud Function returned an error: ';
  const suffix = ' (auth/internal-error).';
  assert.ok(
    err.message.startsWith(prefix) && err.message.endsWith(suffix),
    `${what}: unexpected message ${err.message}`,
  );
  const body = JSON.parse(err.message.slice(prefix.length, -suffix.length));
  assert.deepEqual(body, { error: { message, status } }, what);
  return err;
}

// Calls recorded for handler paths, in order, as [path, uid].
const callList = () => H.calls.map((c) => [c.path, c.user?.uid]);

// --- shared fixtures ---

let handlers;
before(async () => {
  handlers = await H.startHandlerServer();
});
after(async () => {
  await handlers?.close();
  await deleteApp(defaultAdminApp);
});

for (const emulator of [true, false]) {
  const modeName = emulator ? 'emulator' : 'default';
  describe(`blocking functions with firebase-functions, ${modeName} mode`, () => {
    let server;
    let customTokenApp;

    before(async () => {
      server = await startFirekeeper(emulator);
      const tv = createRequire(import.meta.url)(
        path.join(
          path.dirname(createRequire(import.meta.url).resolve('firebase-admin')),
          'auth',
          'token-verifier.js',
        ),
      );
      const adminAuth = adminGetAuth(defaultAdminApp);
      if (emulator) {
        // Mode B: firebase-admin (read per call) accepts only unsigned JWTs.
        process.env.FIREBASE_AUTH_EMULATOR_HOST = server.url.replace(/^http:\/\//, '');
      } else {
        // Mode C: RS256, keys from the server instead of Google's hard-coded URL.
        delete process.env.FIREBASE_AUTH_EMULATOR_HOST;
        adminAuth.authBlockingTokenVerifier = new tv.FirebaseTokenVerifier(
          server.url + ID_KEYS_PATH,
          'https://securetoken.google.com/',
          tv.AUTH_BLOCKING_TOKEN_INFO,
          defaultAdminApp,
        );
      }
      // Custom tokens: unsigned in emulator mode, signed with a CLI service account otherwise.
      customTokenApp = initializeApp(
        emulator
          ? { projectId: PROJECT }
          : { projectId: PROJECT, credential: cert(JSON.parse(readFileSync(server.saFile, 'utf8'))) },
        `fk-blocking-custom-${modeName}`,
      );
    });

    after(async () => {
      if (customTokenApp) await deleteApp(customTokenApp);
      if (server) await server.stop();
    });

    beforeEach(() => H.resetRecords());
    afterEach(async () => {
      if (server) await setTriggers(server, handlers.url, {});
    });

    for (const api of ['v1', 'v2']) {
      it(`${api}: recording handlers fire beforeCreate then beforeSignIn on sign-up, beforeSignIn on sign-in, nothing on refresh or profile update`, { timeout: TEST_TIMEOUT }, async () => {
        const bc = `/${api}/record-before-create`;
        const bs = `/${api}/record-before-sign-in`;
        const cfg = await setTriggers(server, handlers.url, { beforeCreate: bc, beforeSignIn: bs });
        const got = (await adminFetch(server, CONFIG_PATH)).body;
        assert.deepEqual(got.blockingFunctions.triggers, cfg.blockingFunctions.triggers);
        assert.equal(got.blockingFunctions.triggers.beforeCreate.functionUri, handlers.url + bc);
        assert.equal(got.blockingFunctions.triggers.beforeSignIn.audience, audienceFor(bs));

        await withClient(server, async (auth) => {
          auth.languageCode = 'fr';
          const email = uniqueEmail(`record-${api}`);
          const cred = await createUserWithEmailAndPassword(auth, email, PASSWORD);
          const uid = cred.user.uid;
          assert.deepEqual(callList(), [[bc, uid], [bs, uid]]);
          assert.deepEqual(H.requests.map((r) => [r.path, r.status]), [[bc, 200], [bs, 200]]);

          // The JWTs (spec §3.2) and what firebase-functions made of them (§8.2).
          for (const [i, event] of ['beforeCreate', 'beforeSignIn'].entries()) {
            const req = H.requests[i];
            const call = H.calls[i];
            assert.equal(req.contentType, 'application/json');
            if (emulator) {
              assert.deepEqual(req.jwtHeader, { alg: 'none', typ: 'JWT' });
              assert.equal(req.jwt.split('.')[2], '');
            } else {
              assert.equal(req.jwtHeader.alg, 'RS256');
              assert.ok(req.jwtHeader.kid, 'RS256 JWT has a kid');
            }
            const p = req.jwtPayload;
            assert.equal(p.iss, `https://securetoken.google.com/${PROJECT}`);
            assert.equal(p.aud, audienceFor(event === 'beforeCreate' ? bc : bs));
            assert.equal(p.exp - p.iat, 600);
            assert.ok(Math.abs(p.iat - Date.now() / 1000) < 60, `iat ${p.iat} is now`);
            assert.equal(p.sub, uid);
            assert.equal(p.event_type, event);
            assert.equal(p.sign_in_method, 'password');
            assert.equal(p.locale, 'fr');
            assert.equal(p.user_record.uid, uid);
            assert.equal(
              call.eventType,
              `providers/cloud.auth/eventTypes/user.${event}:password`,
            );
            assert.equal(call.authType, 'USER');
            assert.deepEqual(call.resource, {
              service: 'identitytoolkit.googleapis.com',
              name: `projects/${PROJECT}`,
            });
            assert.equal(call.locale, 'fr');
            assert.equal(call.ipAddress, '127.0.0.1');
            assert.ok(typeof call.userAgent === 'string' && call.userAgent.length > 0);
            assert.equal(call.eventId, p.event_id);
            assert.equal(call.providerId, 'password');
            assert.equal(call.isNewUser, event === 'beforeCreate');
            assert.equal(call.user.email, email);
            assert.equal(call.user.emailVerified, false);
            assert.equal(call.user.disabled, false);
            assert.deepEqual(call.user.providerIds, ['password']);
            assert.ok(!Number.isNaN(Date.parse(call.user.creationTime)), 'creationTime is a date');
            assert.ok(
              Math.abs(Date.parse(call.user.creationTime) - Date.now()) < 60_000,
              `creationTime ${call.user.creationTime} is now (milliseconds on the wire)`,
            );
          }
          assert.notEqual(H.calls[0].eventId, H.calls[1].eventId);

          // Refresh and profile update: no hook.
          H.resetRecords();
          await cred.user.getIdToken(true);
          await updateProfile(cred.user, { displayName: 'Renamed' });
          assert.deepEqual(callList(), []);

          // Sign-in: beforeSignIn only, with the stored profile.
          await signOut(auth);
          const again = await signInWithEmailAndPassword(auth, email, PASSWORD);
          assert.equal(again.user.uid, uid);
          assert.deepEqual(callList(), [[bs, uid]]);
          assert.equal(H.calls[0].user.displayName, 'Renamed');
          assert.equal(H.calls[0].isNewUser, false);
          assert.equal(H.requests[0].jwtPayload.event_type, 'beforeSignIn');
        });
      });
    }

    it('anonymous and custom-token sign-ins call no hook', { timeout: TEST_TIMEOUT }, async () => {
      await setTriggers(server, handlers.url, {
        beforeCreate: '/v1/record-before-create',
        beforeSignIn: '/v2/record-before-sign-in',
      });
      await withClient(server, async (auth) => {
        const anon = await signInAnonymously(auth);
        assert.equal(anon.user.isAnonymous, true);
        await signOut(auth);
        const uid = `custom-${modeName}-${Date.now()}`;
        const token = await adminGetAuth(customTokenApp).createCustomToken(uid, { tier: 'gold' });
        assert.equal(decodeJwt(token).header.alg, emulator ? 'none' : 'RS256');
        const cred = await signInWithCustomToken(auth, token);
        assert.equal(cred.user.uid, uid);
        assert.equal((await tokenClaims(cred.user)).tier, 'gold');
        assert.ok(await userByUid(server, uid), 'the custom-token user was created');
        assert.ok(await userByUid(server, anon.user.uid), 'the anonymous user was created');
      });
      assert.deepEqual(H.requests, [], 'no blocking-function request');
      // The same triggers do fire for a password sign-up (the registration was live).
      await withClient(server, (auth) =>
        createUserWithEmailAndPassword(auth, uniqueEmail('anon-control'), PASSWORD),
      );
      assert.deepEqual(
        H.calls.map((c) => c.path),
        ['/v1/record-before-create', '/v2/record-before-sign-in'],
      );
    });

    // beforeSendEmail runs before reset and sign-in-link emails and can stop them. Emulator
    // mode only here: these default-mode servers have no mail server, so production refuses
    // to send before any function runs (the Rust API tests cover default mode with a mailer).
    for (const api of ['v1', 'v2']) {
      it(`${api}: beforeSendEmail sees reset and sign-in-link emails and can stop one`, {
        timeout: TEST_TIMEOUT,
        skip: !emulator && 'no mail server on this default-mode server',
      }, async () => {
        await setTriggers(server, handlers.url, { beforeSendEmail: `/${api}/email-domain-block` });
        const good = uniqueEmail(`mail-${api}`);
        const linkOnly = uniqueEmail(`mail-link-${api}`);
        const bad = uniqueEmail(`mail-deny-${api}`, 'blocked.test');
        await withClient(server, async (auth) => {
          for (const email of [good, bad]) {
            await createUserWithEmailAndPassword(auth, email, PASSWORD);
            await signOut(auth);
          }
          await sendPasswordResetEmail(auth, good);
          await sendSignInLinkToEmail(auth, linkOnly, { url: 'http://localhost/finish', handleCodeInApp: true });
          await expectBlocked(
            sendPasswordResetEmail(auth, bad),
            'PERMISSION_DENIED',
            'Emails to blocked.test are not sent',
            'a reset email to a blocked domain',
          );
        });
        const event = 'providers/cloud.auth/eventTypes/user.beforeSendEmail';
        assert.deepEqual(
          H.calls.map((c) => [c.path, c.eventType, c.emailType, c.recipient, c.user]),
          [
            [`/${api}/email-domain-block`, event, 'PASSWORD_RESET', good, undefined],
            [`/${api}/email-domain-block`, event, 'EMAIL_SIGN_IN', linkOnly, undefined],
            [`/${api}/email-domain-block`, event, 'PASSWORD_RESET', bad, undefined],
          ],
        );
        const listed = await adminFetch(server, `/emulator/v1/projects/${PROJECT}/oobCodes`);
        const emails = listed.body.oobCodes.map((c) => c.email);
        assert.ok(emails.includes(good) && emails.includes(linkOnly), JSON.stringify(emails));
        assert.ok(!emails.includes(bad), 'no code was made for the refused email');
      });
    }

    // Allow sign-up only from a specific domain.
    for (const [api, message] of [
      ['v1', (email) => `Unauthorized email "${email}"`],
      ['v2', () => 'Unauthorized email'],
    ]) {
      it(`${api}: domain allowlist blocks other domains' sign-up (INVALID_ARGUMENT), no user stored`, { timeout: TEST_TIMEOUT }, async () => {
        const p = `/${api}/domain-allowlist`;
        await setTriggers(server, handlers.url, { beforeCreate: p });
        await withClient(server, async (auth) => {
          const good = uniqueEmail(`allow-${api}`);
          const cred = await createUserWithEmailAndPassword(auth, good, PASSWORD);
          assert.equal((await userByUid(server, cred.user.uid)).email, good);
          await signOut(auth);

          const bad = uniqueEmail(`deny-${api}`, 'evil.test');
          await expectBlocked(
            createUserWithEmailAndPassword(auth, bad, PASSWORD),
            'INVALID_ARGUMENT',
            message(bad),
            'sign-up from another domain',
          );
          assert.equal(auth.currentUser, null);
          assert.equal(await userByEmail(server, bad), undefined, 'no user for the refused email');
          assert.deepEqual(H.calls.map((c) => c.user.email), [good, bad]);
          assert.deepEqual(H.requests.map((r) => r.status), [200, 400]);
        });
      });
    }

    it('v1: unverified emails are blocked at sign-in until verified', { timeout: TEST_TIMEOUT }, async () => {
      const p = '/v1/require-verified-sign-in';
      await withClient(server, async (auth) => {
        // Sign-up under the hook fails too (beforeSignIn runs after beforeCreate).
        await setTriggers(server, handlers.url, { beforeSignIn: p });
        const first = uniqueEmail('unverified-signup');
        await expectBlocked(
          createUserWithEmailAndPassword(auth, first, PASSWORD),
          'INVALID_ARGUMENT',
          `"${first}" needs to be verified before access is granted.`,
          'sign-up of an unverified email',
        );
        assert.equal(auth.currentUser, null);

        // A user created without the hook: refused until the email is verified.
        await setTriggers(server, handlers.url, {});
        const email = uniqueEmail('unverified');
        const { user } = await createUserWithEmailAndPassword(auth, email, PASSWORD);
        await signOut(auth);
        await setTriggers(server, handlers.url, { beforeSignIn: p });
        H.resetRecords();
        await expectBlocked(
          signInWithEmailAndPassword(auth, email, PASSWORD),
          'INVALID_ARGUMENT',
          `"${email}" needs to be verified before access is granted.`,
          'sign-in of an unverified email',
        );
        assert.equal(auth.currentUser, null);
        await adminUpdate(server, { localId: user.uid, emailVerified: true });
        const cred = await signInWithEmailAndPassword(auth, email, PASSWORD);
        assert.equal(cred.user.uid, user.uid);
        assert.equal((await tokenClaims(cred.user)).email_verified, true);
        assert.deepEqual(callList(), [[p, user.uid], [p, user.uid]]);
        assert.deepEqual(H.calls.map((c) => c.user.emailVerified), [false, true]);
      });
    });

    it('v2: sign-up with an unverified email is blocked at creation, no user stored', { timeout: TEST_TIMEOUT }, async () => {
      const p = '/v2/require-verified-create';
      await setTriggers(server, handlers.url, { beforeCreate: p, beforeSignIn: '/v2/record-before-sign-in' });
      await withClient(server, async (auth) => {
        const email = uniqueEmail('unverified-create');
        await expectBlocked(
          createUserWithEmailAndPassword(auth, email, PASSWORD),
          'INVALID_ARGUMENT',
          'Unverified email',
          'sign-up of an unverified email',
        );
        assert.equal(await userByEmail(server, email), undefined);
        assert.deepEqual(H.calls.map((c) => c.path), [p], 'beforeSignIn is not called');
      });
    });

    for (const api of ['v1', 'v2']) {
      it(`${api}: "treat facebook.com emails as verified" leaves a password sign-up unverified`, { timeout: TEST_TIMEOUT }, async () => {
        const p = `/${api}/facebook-verified`;
        await setTriggers(server, handlers.url, { beforeCreate: p });
        await withClient(server, async (auth) => {
          const cred = await createUserWithEmailAndPassword(auth, uniqueEmail(`fb-${api}`), PASSWORD);
          assert.equal(H.calls[0].eventType, 'providers/cloud.auth/eventTypes/user.beforeCreate:password');
          assert.equal(H.requests[0].responseBody, '{}');
          assert.equal((await userByUid(server, cred.user.uid)).emailVerified, false);
          assert.equal((await tokenClaims(cred.user)).email_verified, false);
        });
      });
    }
    // Treat facebook.com emails as verified. Emulator mode signs in with the emulator's
    // fake IdP tokens; default mode verifies real providers only (a Facebook app is not
    // available here; OIDC providers are tested in interop/node/federated.test.mjs).
    for (const api of ['v1', 'v2']) {
      it(`${api}: a facebook.com sign-up gets its email marked verified`, {
        timeout: TEST_TIMEOUT,
        skip: !emulator && 'needs a real facebook.com app in default mode',
      }, async () => {
        await setTriggers(server, handlers.url, { beforeCreate: `/${api}/facebook-verified` });
        await withClient(server, async (auth) => {
          const fbEmail = uniqueEmail(`fb-${api}`);
          const idToken = JSON.stringify({ sub: `fb-${randomBytes(4).toString('hex')}`, email: fbEmail, email_verified: false });
          const cred = await signInWithCredential(auth, new OAuthProvider('facebook.com').credential({ idToken }));
          assert.equal(cred.user.email, fbEmail);
          assert.equal(cred.user.emailVerified, true, 'the function marked it verified');
          assert.equal((await userByUid(server, cred.user.uid)).emailVerified, true);
          await signOut(auth);
          // A password sign-up is left alone.
          const pwEmail = uniqueEmail(`fb-control-${api}`);
          const pw = await createUserWithEmailAndPassword(auth, pwEmail, PASSWORD);
          assert.equal(pw.user.emailVerified, false);
        });
        assert.deepEqual(
          H.calls.map((c) => c.eventType),
          [
            'providers/cloud.auth/eventTypes/user.beforeCreate:facebook.com',
            'providers/cloud.auth/eventTypes/user.beforeCreate:password',
          ],
        );
      });
    }

    // Block sign-in from some IP addresses.
    for (const api of ['v1', 'v2']) {
      it(`${api}: IP block denies sign-in from a listed address (PERMISSION_DENIED)`, { timeout: TEST_TIMEOUT }, async () => {
        const p = `/${api}/ip-block`;
        await setTriggers(server, handlers.url, { beforeSignIn: p });
        await withClient(server, async (auth) => {
          const email = uniqueEmail(`ip-${api}`);
          const { user } = await createUserWithEmailAndPassword(auth, email, PASSWORD);
          await signOut(auth);
          H.blockedIps.add('127.0.0.1');
          await expectBlocked(
            signInWithEmailAndPassword(auth, email, PASSWORD),
            'PERMISSION_DENIED',
            'Unauthorized access!',
            'sign-in from a blocked address',
          );
          assert.equal(auth.currentUser, null);
          H.blockedIps.clear();
          H.blockedIps.add('203.0.113.7');
          const cred = await signInWithEmailAndPassword(auth, email, PASSWORD);
          assert.equal(cred.user.uid, user.uid);
          assert.deepEqual(H.calls.map((c) => c.ipAddress), ['127.0.0.1', '127.0.0.1', '127.0.0.1']);
          assert.deepEqual(H.requests.map((r) => r.status), [200, 403, 200]);
        });
      });
    }

    // Custom claims (stored) and session claims (this session's tokens only).
    for (const api of ['v1', 'v2']) {
      it(`${api}: customClaims are stored, sessionClaims only in this session's tokens and override them`, { timeout: TEST_TIMEOUT }, async () => {
        const bc = `/${api}/claims-before-create`;
        const bs = `/${api}/claims-before-sign-in`;
        await setTriggers(server, handlers.url, { beforeCreate: bc, beforeSignIn: bs });
        await withClient(server, async (auth) => {
          const email = uniqueEmail(`claims-${api}`);
          const cred = await createUserWithEmailAndPassword(auth, email, PASSWORD);
          const uid = cred.user.uid;
          const eid = `E-${uid.slice(0, 6)}`;
          // beforeSignIn sees beforeCreate's customClaims.
          assert.deepEqual(H.calls[1].user.customClaims, { eid, role: 'employee' });
          if (api === 'v1') {
            // The page's v1 sample returns sessionClaims from beforeCreate; firebase-functions
            // forwards them, the server ignores them for beforeCreate.
            assert.match(H.requests[0].responseBody, /"sessionClaims":\{"fromBeforeCreate":true\}/);
          }
          const stored = await userByUid(server, uid);
          assert.deepEqual(storedClaims(stored), { eid, role: 'employee' });

          let claims = await tokenClaims(cred.user);
          assert.equal(claims.eid, eid);
          assert.equal(claims.role, 'session-admin', 'session claim overrides the custom claim');
          assert.deepEqual(claims.groups, ['eng', 'ops']);
          assert.equal(claims.fromBeforeCreate, undefined);

          await sleep(1100);
          claims = await tokenClaims(cred.user, true);
          assert.equal(claims.role, 'session-admin', 'kept on refresh');
          assert.deepEqual(claims.groups, ['eng', 'ops']);
          assert.deepEqual(storedClaims(await userByUid(server, uid)), { eid, role: 'employee' });

          // A new sign-in without the session-claims hook: stored claims only.
          await signOut(auth);
          await setTriggers(server, handlers.url, { beforeSignIn: `/${api}/record-before-sign-in` });
          const again = await signInWithEmailAndPassword(auth, email, PASSWORD);
          claims = await tokenClaims(again.user);
          assert.equal(claims.role, 'employee');
          assert.equal(claims.eid, eid);
          assert.equal(claims.groups, undefined);
        });
      });
    }

    // Track the sign-in IP address (the page's code: sessionClaims.signInIpAddress).
    for (const api of ['v1', 'v2']) {
      it(`${api}: the sign-in IP address as a session claim`, { timeout: TEST_TIMEOUT }, async () => {
        const p = `/${api}/sign-in-ip`;
        await setTriggers(server, handlers.url, { beforeSignIn: p });
        await withClient(server, async (auth) => {
          const email = uniqueEmail(`ip-claim-${api}`);
          const cred = await createUserWithEmailAndPassword(auth, email, PASSWORD);
          assert.deepEqual(JSON.parse(H.requests[0].responseBody), {
            userRecord: { sessionClaims: { signInIpAddress: '127.0.0.1' }, updateMask: 'sessionClaims' },
          });
          assert.equal((await tokenClaims(cred.user)).signInIpAddress, '127.0.0.1');
          await sleep(1100);
          assert.equal((await tokenClaims(cred.user, true)).signInIpAddress, '127.0.0.1', 'kept on refresh');
          const stored = await userByUid(server, cred.user.uid);
          assert.deepEqual(storedClaims(stored), {}, 'session claims are not stored');

          // A new sign-in without the hook: no such claim.
          await signOut(auth);
          await setTriggers(server, handlers.url, {});
          const again = await signInWithEmailAndPassword(auth, email, PASSWORD);
          assert.equal((await tokenClaims(again.user)).signInIpAddress, undefined);
        });
      });
    }

    // Default display name.
    for (const api of ['v1', 'v2']) {
      it(`${api}: default display name "Guest"`, { timeout: TEST_TIMEOUT }, async () => {
        await setTriggers(server, handlers.url, { beforeCreate: `/${api}/default-name` });
        await withClient(server, async (auth) => {
          const cred = await createUserWithEmailAndPassword(auth, uniqueEmail(`guest-${api}`), PASSWORD);
          assert.equal(H.calls[0].user.displayName, undefined);
          assert.equal(cred.user.displayName, 'Guest');
          assert.equal((await userByUid(server, cred.user.uid)).displayName, 'Guest');
          assert.equal((await tokenClaims(cred.user)).name, 'Guest');
        });
      });
    }

    // Photo screening: v1 answers `photoURL` (firebase-functions' key), v2 the page's `photoUrl`.
    for (const api of ['v1', 'v2']) {
      it(`${api}: photo screening replaces an inappropriate photo at sign-in`, { timeout: TEST_TIMEOUT }, async () => {
        await withClient(server, async (auth) => {
          const email = uniqueEmail(`photo-${api}`);
          const { user } = await createUserWithEmailAndPassword(auth, email, PASSWORD);
          const bad = 'https://example.com/inappropriate.png';
          await updateProfile(user, { photoURL: bad });
          await signOut(auth);
          await setTriggers(server, handlers.url, { beforeSignIn: `/${api}/screen-photo` });
          const cred = await signInWithEmailAndPassword(auth, email, PASSWORD);
          assert.equal(H.calls[0].user.photoURL, bad);
          assert.match(H.requests[0].responseBody, api === 'v1' ? /"photoURL"/ : /"photoUrl"/);
          assert.equal((await userByUid(server, user.uid)).photoUrl, H.PLACEHOLDER_GUEST_PHOTO_URL);
          assert.equal((await tokenClaims(cred.user)).picture, H.PLACEHOLDER_GUEST_PHOTO_URL);
          assert.equal(cred.user.photoURL, H.PLACEHOLDER_GUEST_PHOTO_URL);

          // An appropriate photo is left alone.
          const ok = 'https://example.com/fine.png';
          await updateProfile(cred.user, { photoURL: ok });
          await signOut(auth);
          H.resetRecords();
          await signInWithEmailAndPassword(auth, email, PASSWORD);
          assert.equal(H.requests[0].responseBody, '{}');
          assert.equal((await userByUid(server, user.uid)).photoUrl, ok);
        });
      });
    }

    // Deadline: one API per mode (each run waits for the handler's 10 s).
    const slowApi = emulator ? 'v1' : 'v2';
    it(`${slowApi}: a handler slower than 7 s fails the sign-up within 8 s and stores no user`, { timeout: TEST_TIMEOUT }, async () => {
      const p = `/${slowApi}/slow`;
      await setTriggers(server, handlers.url, { beforeCreate: p, beforeSignIn: `/${slowApi}/record-before-sign-in` });
      await withClient(server, async (auth) => {
        const email = uniqueEmail(`slow-${slowApi}`);
        const started = Date.now();
        const err = await rejection(createUserWithEmailAndPassword(auth, email, PASSWORD), 'slow sign-up');
        const elapsed = Date.now() - started;
        assert.equal(err.code, 'auth/internal-error', err.message);
        assert.ok(elapsed >= DEADLINE_MS - 500 && elapsed <= DEADLINE_MS + 1000, `failed after ${elapsed} ms`);
        assert.equal(auth.currentUser, null);
        assert.equal(await userByEmail(server, email), undefined);
        // The handler's late answer changes nothing.
        const until = started + H.SLOW_HANDLER_MS + 3000;
        while (H.requests[0]?.status === null && Date.now() < until) await sleep(100);
        assert.equal(H.requests[0].status, 200, 'the slow handler answered eventually');
        assert.equal(await userByEmail(server, email), undefined);
        assert.deepEqual(H.calls.map((c) => c.path), [p], 'beforeSignIn is not called');
      });
    });

    it('without a matching audience firebase-functions refuses the JWT; the sign-up fails', { timeout: TEST_TIMEOUT }, async () => {
      // Default audience = the functionUri (a loopback URL): not a cloudfunctions.net URL.
      await setTriggers(server, handlers.url, { beforeCreate: '/v1/default-name' }, { audience: false });
      await withClient(server, async (auth) => {
        const email = uniqueEmail('no-audience');
        await expectBlocked(
          createUserWithEmailAndPassword(auth, email, PASSWORD),
          'INTERNAL',
          'An unexpected error occurred.',
          'sign-up with a refused JWT',
        );
        assert.equal(H.requests[0].jwtPayload.aud, `${handlers.url}/v1/default-name`);
        assert.equal(H.requests[0].status, 500);
        assert.deepEqual(H.calls, [], 'the handler never ran');
        assert.equal(await userByEmail(server, email), undefined);
      });
    });

    if (!emulator) {
      it('RS256 JWTs name a published key; firebase-functions refuses tampered and unsigned ones', { timeout: TEST_TIMEOUT }, async () => {
        const p = '/v1/record-before-create';
        await setTriggers(server, handlers.url, { beforeCreate: p });
        await withClient(server, (auth) =>
          createUserWithEmailAndPassword(auth, uniqueEmail('rs256'), PASSWORD),
        );
        const { jwt, jwtHeader } = H.requests[0];
        const keys = await (await fetch(server.url + ID_KEYS_PATH)).json();
        assert.ok(jwtHeader.kid in keys, `kid ${jwtHeader.kid} is published`);

        const post = async (token) => {
          const res = await fetch(handlers.url + p, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ data: { jwt: token } }),
          });
          return { status: res.status, body: await res.json() };
        };
        const [h, payload, sig] = jwt.split('.');
        const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
        H.resetRecords();
        // The genuine token is accepted when replayed (it has not expired) ...
        assert.equal((await post(jwt)).status, 200);
        assert.equal(H.calls.length, 1);
        // ... a changed payload with the same signature is not ...
        const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
        const tampered = `${h}.${b64({ ...claims, user_record: { ...claims.user_record, email: 'x@evil.test' } })}.${sig}`;
        assert.deepEqual(await post(tampered), {
          status: 500,
          body: { error: { message: 'An unexpected error occurred.', status: 'INTERNAL' } },
        });
        // ... nor an unsigned copy.
        const unsigned = `${b64({ alg: 'none', typ: 'JWT' })}.${payload}.`;
        assert.equal((await post(unsigned)).status, 500);
        assert.equal(H.calls.length, 1, 'the handler ran only for the genuine token');
      });
    }
  });
}
