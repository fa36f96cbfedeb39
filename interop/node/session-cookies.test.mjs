// Session cookies (identity-toolkit.md §4.4, §4.7) with the real Node Admin SDK:
// - emulator mode: createSessionCookie / verifySessionCookie on unsigned (`alg: none`) cookies,
//   claims copied from the ID token, revoked and disabled users;
// - default mode: RS256 cookies created over REST with the admin token, verified by `jose`
//   against the public session-cookie key endpoints (x509 map and JWKS) and by the Admin SDK
//   with its verifiers pointed at the server (sdk-clients.md §3.3).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cert, deleteApp, initializeApp } from 'firebase-admin/app';
import { getAuth } from 'firebase-admin/auth';
import { createLocalJWKSet, decodeProtectedHeader, importX509, jwtVerify } from 'jose';
import {
  adminFetch,
  decodeJwt,
  expectAuthError,
  itPost,
  MODES,
  PROJECT,
  sleep,
  uniqueEmail,
} from './helpers.mjs';

const PASSWORD = 'cookie-Password-1';
const COOKIE_ISSUER = `https://session.firebase.google.com/${PROJECT}`;
const ID_ISSUER = `https://securetoken.google.com/${PROJECT}`;
const ID_KEYS_PATH = '/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com';
const ID_JWKS_PATH = '/service_accounts/v1/jwk/securetoken@system.gserviceaccount.com';
const COOKIE_KEYS_PATH = '/identitytoolkit/v3/relyingparty/publicKeys';
const COOKIE_JWKS_PATH = '/identitytoolkit.googleapis.com/v1/sessionCookiePublicKeys';
const CREATE_PATH = `/identitytoolkit.googleapis.com/v1/projects/${PROJECT}:createSessionCookie`;
const MIN_SECONDS = 300;
const MAX_SECONDS = 14 * 24 * 3600;

const nowSeconds = () => Math.floor(Date.now() / 1000);

function withoutTimes(claims, ...more) {
  const copy = structuredClone(claims);
  for (const k of ['iss', 'iat', 'exp', ...more]) delete copy[k];
  return copy;
}

// Cookie claims = ID token claims except iss/iat/exp; iat = now, exp = iat + duration.
function assertCookieClaims(cookieClaims, idClaims, seconds, { before: t0, after: t1 }) {
  assert.deepEqual(withoutTimes(cookieClaims), withoutTimes(idClaims));
  assert.equal(cookieClaims.iss, COOKIE_ISSUER);
  assert.ok(cookieClaims.iat >= t0 - 5 && cookieClaims.iat <= t1 + 5, `iat ${cookieClaims.iat} is now`);
  assert.ok(
    Math.abs(cookieClaims.exp - (t1 + seconds)) <= 5,
    `exp ${cookieClaims.exp} is within 5 s of now + ${seconds}`,
  );
  assert.equal(cookieClaims.exp - cookieClaims.iat, seconds);
}

async function signUpRest(mode, tag) {
  const email = uniqueEmail(tag);
  const res = await itPost(mode.url, 'accounts:signUp', mode.apiKey, {
    email,
    password: PASSWORD,
    returnSecureToken: true,
  });
  assert.equal(res.status, 200, `signUp: ${JSON.stringify(res.body)}`);
  return { uid: res.body.localId, email, idToken: res.body.idToken };
}

async function signInRest(mode, email) {
  const res = await itPost(mode.url, 'accounts:signInWithPassword', mode.apiKey, {
    email,
    password: PASSWORD,
    returnSecureToken: true,
  });
  assert.equal(res.status, 200, `signInWithPassword: ${JSON.stringify(res.body)}`);
  return res.body.idToken;
}

// ---------------------------------------------------------------------------------------
// Emulator mode: firebase-admin with FIREBASE_AUTH_EMULATOR_HOST

const emu = MODES.find((m) => m.name === 'emulator');

describe('session cookies with firebase-admin (Node), emulator mode', { skip: emu.skip }, () => {
  let app;
  let admin;

  before(() => {
    // The Node SDK reads the variable once, when getAuth() builds the client; it is removed
    // again so that the default-mode suite below is not switched to emulator mode.
    process.env.FIREBASE_AUTH_EMULATOR_HOST = new URL(emu.url).host;
    app = initializeApp({ projectId: PROJECT }, `fk-cookie-emu-${process.pid}`);
    admin = getAuth(app);
    delete process.env.FIREBASE_AUTH_EMULATOR_HOST;
  });

  after(async () => {
    if (app) await deleteApp(app);
  });

  it('createSessionCookie copies the ID token claims (custom claims too), with iss/iat/exp of its own', async () => {
    const { uid, email } = await signUpRest(emu, 'node-cookie-claims');
    await admin.setCustomUserClaims(uid, { role: 'editor', level: 3 });
    const idToken = await signInRest(emu, email);
    const idClaims = decodeJwt(idToken).payload;
    assert.equal(idClaims.role, 'editor', 'the new sign-in carries the custom claim');

    // The cookie's iat must be its own creation time, not the ID token's.
    await sleep(1100);
    const seconds = 1800;
    const t0 = nowSeconds();
    const cookie = await admin.createSessionCookie(idToken, { expiresIn: seconds * 1000 });
    const t1 = nowSeconds();

    const { header, payload, signature } = decodeJwt(cookie);
    assert.equal(header.alg, 'none', 'emulator-mode cookies are unsigned');
    assert.equal(signature, '');
    assertCookieClaims(payload, idClaims, seconds, { before: t0, after: t1 });
    assert.ok(payload.iat > idClaims.iat, 'cookie iat is later than the ID token iat');

    const decoded = await admin.verifySessionCookie(cookie, true);
    assert.equal(decoded.uid, uid);
    assert.equal(decoded.role, 'editor');
    assert.equal(decoded.level, 3);
    assert.equal(decoded.iss, COOKIE_ISSUER);
    assert.equal(decoded.exp, payload.exp);
    // What the SDK decodes is the ID token minus iss/iat/exp, plus the `uid` it adds.
    assert.deepEqual(withoutTimes(decoded, 'uid'), withoutTimes(idClaims));

    // Cookie and ID token are not interchangeable (the issuer differs).
    await expectAuthError(admin.verifyIdToken(cookie), ['auth/argument-error'], 'cookie as ID token');
    await expectAuthError(
      admin.verifySessionCookie(idToken),
      ['auth/argument-error'],
      'ID token as cookie',
    );
  });

  it('expiresIn is milliseconds, floored to seconds; the bounds are enforced by the SDK and accepted by the server', async () => {
    const { idToken } = await signUpRest(emu, 'node-cookie-bounds');

    // Client-side checks: nothing is sent.
    for (const expiresIn of [MIN_SECONDS * 1000 - 1, (MAX_SECONDS + 1) * 1000]) {
      await expectAuthError(
        admin.createSessionCookie(idToken, { expiresIn }),
        ['auth/invalid-session-cookie-duration'],
        `expiresIn ${expiresIn}`,
      );
    }

    // 300 999 ms is sent as validDuration 300; 1 209 600 999 ms as 1 209 600.
    for (const [expiresIn, seconds] of [
      [MIN_SECONDS * 1000 + 999, MIN_SECONDS],
      [MAX_SECONDS * 1000 + 999, MAX_SECONDS],
    ]) {
      const t0 = nowSeconds();
      const cookie = await admin.createSessionCookie(idToken, { expiresIn });
      const t1 = nowSeconds();
      assertCookieClaims(decodeJwt(cookie).payload, decodeJwt(idToken).payload, seconds, {
        before: t0,
        after: t1,
      });
      assert.equal((await admin.verifySessionCookie(cookie)).exp, decodeJwt(cookie).payload.exp);
    }
  });

  it('verifySessionCookie(cookie, true) rejects a cookie after revokeRefreshTokens; the revoked ID token makes no new cookie', async () => {
    const { uid, email } = await signUpRest(emu, 'node-cookie-revoke');
    const idToken = await signInRest(emu, email);
    const cookie = await admin.createSessionCookie(idToken, { expiresIn: 3600 * 1000 });
    assert.equal((await admin.verifySessionCookie(cookie, true)).uid, uid);

    // tokensValidAfterTime has one-second resolution.
    await sleep(1100);
    await admin.revokeRefreshTokens(uid);
    await expectAuthError(
      admin.verifySessionCookie(cookie, true),
      ['auth/session-cookie-revoked'],
      'cookie after revoke',
    );
    // The server refuses the pre-revocation ID token (TOKEN_EXPIRED).
    await expectAuthError(
      admin.createSessionCookie(idToken, { expiresIn: 3600 * 1000 }),
      ['auth/id-token-expired'],
      'cookie from a revoked ID token',
    );

    // A new sign-in gives a cookie that passes the check again.
    const fresh = await admin.createSessionCookie(await signInRest(emu, email), {
      expiresIn: 3600 * 1000,
    });
    assert.equal((await admin.verifySessionCookie(fresh, true)).uid, uid);
  });

  it('verifySessionCookie rejects the cookie of a disabled user; no new cookie for that user', async () => {
    const { uid, idToken } = await signUpRest(emu, 'node-cookie-disabled');
    const cookie = await admin.createSessionCookie(idToken, { expiresIn: 3600 * 1000 });
    assert.equal((await admin.verifySessionCookie(cookie, true)).uid, uid);

    await admin.updateUser(uid, { disabled: true });
    await expectAuthError(
      admin.verifySessionCookie(cookie, true),
      ['auth/user-disabled'],
      'cookie of a disabled user',
    );
    await expectAuthError(
      admin.createSessionCookie(idToken, { expiresIn: 3600 * 1000 }),
      ['auth/user-disabled'],
      'cookie for a disabled user',
    );

    await admin.updateUser(uid, { disabled: false });
    assert.equal((await admin.verifySessionCookie(cookie, true)).uid, uid);
  });
});

// ---------------------------------------------------------------------------------------
// Default mode: RS256 cookies, public key endpoints, independent verification with jose

const prod = MODES.find((m) => m.name === 'default');
const prodSkip =
  prod.skip ||
  (!process.env.FK_PROD_ADMIN_TOKEN && 'FK_PROD_ADMIN_TOKEN is not set (run interop/run.sh)') ||
  (!process.env.FK_PROD_SA_FILE && 'FK_PROD_SA_FILE is not set (run interop/run.sh)');

describe('session cookies in default mode: jose and firebase-admin (Node)', { skip: prodSkip }, () => {
  let app;
  let admin;

  before(() => {
    delete process.env.FIREBASE_AUTH_EMULATOR_HOST;
    const serviceAccount = JSON.parse(readFileSync(process.env.FK_PROD_SA_FILE, 'utf8'));
    app = initializeApp(
      { credential: cert(serviceAccount), projectId: PROJECT },
      `fk-cookie-default-${process.pid}`,
    );
    admin = getAuth(app);
    // As in admin-default.test.mjs: point the verifiers at the server's key URLs.
    const require = createRequire(import.meta.url);
    const tv = require(
      path.join(path.dirname(require.resolve('firebase-admin')), 'auth', 'token-verifier.js'),
    );
    admin.idTokenVerifier = new tv.FirebaseTokenVerifier(
      prod.url + ID_KEYS_PATH,
      'https://securetoken.google.com/',
      tv.ID_TOKEN_INFO,
      app,
    );
    admin.sessionCookieVerifier = new tv.FirebaseTokenVerifier(
      prod.url + COOKIE_KEYS_PATH,
      'https://session.firebase.google.com/',
      tv.SESSION_COOKIE_INFO,
      app,
    );
  });

  after(async () => {
    if (app) await deleteApp(app);
  });

  async function createCookieRest(idToken, validDuration) {
    const res = await adminFetch(prod.url, CREATE_PATH, process.env.FK_PROD_ADMIN_TOKEN, {
      method: 'POST',
      body: validDuration === undefined ? { idToken } : { idToken, validDuration },
    });
    assert.equal(res.status, 200, `createSessionCookie: ${res.status} ${JSON.stringify(res.body)}`);
    assert.equal(typeof res.body.sessionCookie, 'string');
    return res.body.sessionCookie;
  }

  async function getKeys(pathAndQuery) {
    const res = await fetch(prod.url + pathAndQuery);
    assert.equal(res.status, 200, `GET ${pathAndQuery}`);
    return { cacheControl: res.headers.get('cache-control'), body: await res.json() };
  }

  it('an RS256 cookie verifies with jose against the public x509 map, not against the ID-token keys', async () => {
    const { email } = await signUpRest(prod, 'node-cookie-jose');
    const idToken = await signInRest(prod, email);
    const seconds = 7200;
    const t0 = nowSeconds();
    const cookie = await createCookieRest(idToken, seconds);
    const t1 = nowSeconds();

    const header = decodeProtectedHeader(cookie);
    assert.equal(header.alg, 'RS256');
    assert.ok(header.kid, 'the cookie names its key');

    const { cacheControl, body: certs } = await getKeys(COOKIE_KEYS_PATH);
    assert.match(cacheControl ?? '', /max-age=\d+/);
    assert.ok(certs[header.kid], 'the cookie kid is published at publicKeys');
    assert.match(certs[header.kid], /^-----BEGIN CERTIFICATE-----/);

    const key = await importX509(certs[header.kid], 'RS256');
    const { payload } = await jwtVerify(cookie, key, {
      algorithms: ['RS256'],
      issuer: COOKIE_ISSUER,
      audience: PROJECT,
      requiredClaims: ['iat', 'exp', 'sub', 'auth_time'],
    });
    assertCookieClaims(payload, decodeJwt(idToken).payload, seconds, { before: t0, after: t1 });

    // Separate key sets: neither token's kid is in the other's map.
    const { body: idCerts } = await getKeys(ID_KEYS_PATH);
    assert.equal(idCerts[header.kid], undefined, 'cookie kid is not an ID-token key');
    const idKid = decodeProtectedHeader(idToken).kid;
    assert.ok(idCerts[idKid]);
    assert.equal(certs[idKid], undefined, 'ID-token kid is not a cookie key');
    // And the ID token's key does not verify the cookie.
    const idKey = await importX509(idCerts[idKid], 'RS256');
    await assert.rejects(jwtVerify(cookie, idKey, { algorithms: ['RS256'] }), {
      code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
    });

    // A changed payload under the same signature fails.
    const [h, p, s] = cookie.split('.');
    const forgedClaims = { ...decodeJwt(cookie).payload, sub: 'intruder', user_id: 'intruder' };
    const forged = `${h}.${Buffer.from(JSON.stringify(forgedClaims)).toString('base64url')}.${s}`;
    await assert.rejects(jwtVerify(forged, key, { algorithms: ['RS256'] }), {
      code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
    });
  });

  it('sessionCookiePublicKeys (JWKS) publishes the same keys and verifies the cookie', async () => {
    const { idToken } = await signUpRest(prod, 'node-cookie-jwks');
    const cookie = await createCookieRest(idToken, 600);

    const { body: jwks } = await getKeys(`${COOKIE_JWKS_PATH}?key=${encodeURIComponent(prod.apiKey)}`);
    const { body: certs } = await getKeys(COOKIE_KEYS_PATH);
    assert.deepEqual(new Set(jwks.keys.map((k) => k.kid)), new Set(Object.keys(certs)));
    for (const k of jwks.keys) {
      assert.equal(k.kty, 'RSA');
      assert.equal(k.alg, 'RS256');
      assert.ok(k.n && k.e);
    }

    const keySet = createLocalJWKSet(jwks);
    const { payload } = await jwtVerify(cookie, keySet, {
      algorithms: ['RS256'],
      issuer: COOKIE_ISSUER,
      audience: PROJECT,
    });
    assert.equal(payload.sub, decodeJwt(idToken).payload.sub);
    // The ID token is signed by a key this set does not hold.
    await assert.rejects(jwtVerify(idToken, keySet, { algorithms: ['RS256'] }), {
      code: 'ERR_JWKS_NO_MATCHING_KEY',
    });
    // ... and the ID-token JWKS does not hold the cookie's key.
    const { body: idJwks } = await getKeys(ID_JWKS_PATH);
    await assert.rejects(jwtVerify(cookie, createLocalJWKSet(idJwks), { algorithms: ['RS256'] }), {
      code: 'ERR_JWKS_NO_MATCHING_KEY',
    });
  });

  it('firebase-admin verifySessionCookie accepts the cookie and rejects an ID token; verifyIdToken rejects the cookie', async () => {
    const { uid, email } = await signUpRest(prod, 'node-cookie-admin');
    const idToken = await signInRest(prod, email);
    const cookie = await createCookieRest(idToken, 3600);

    const decoded = await admin.verifySessionCookie(cookie);
    assert.equal(decoded.uid, uid);
    assert.equal(decoded.iss, COOKIE_ISSUER);
    assert.deepEqual(withoutTimes(decoded, 'uid'), withoutTimes(decodeJwt(idToken).payload));
    assert.equal((await admin.verifyIdToken(idToken)).uid, uid, 'control: the ID token is valid');

    await expectAuthError(admin.verifySessionCookie(idToken), ['auth/argument-error'], 'ID token as cookie');
    await expectAuthError(admin.verifyIdToken(cookie), ['auth/argument-error'], 'cookie as ID token');
    // The emulator's unsigned format is not accepted outside emulator mode.
    const [, p] = cookie.split('.');
    const unsigned = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${p}.`;
    await expectAuthError(admin.verifySessionCookie(unsigned), ['auth/argument-error'], 'unsigned cookie');
  });

  it('a missing validDuration gives a two-week cookie', async () => {
    const { idToken } = await signUpRest(prod, 'node-cookie-default-duration');
    const t0 = nowSeconds();
    const cookie = await createCookieRest(idToken);
    const t1 = nowSeconds();
    const { payload } = decodeJwt(cookie);
    assertCookieClaims(payload, decodeJwt(idToken).payload, MAX_SECONDS, { before: t0, after: t1 });
    assert.equal((await admin.verifySessionCookie(cookie)).exp, payload.exp);
  });
});
