// Shared helpers for the Node interop tests (not a test file itself).
//
// Environment (set by interop/run.sh):
//   FK_EMU_URL       base URL of a server started with --emulator
//   FK_PROD_URL      base URL of a server in default (production) mode
//   FK_PROD_API_KEY  an API key of that server's project
//   FK_PROJECT       project id (default demo-firekeeper)
//   FK_EMU_IS_REFERENCE=1  only when FK_EMU_URL points at the reference Firebase Auth
//                    Emulator: skips checks of behaviour the spec says Firekeeper fixes.
import { randomBytes } from 'node:crypto';
import { deleteApp, initializeApp } from 'firebase/app';
import { connectAuthEmulator, getAuth } from 'firebase/auth';

export const PROJECT = process.env.FK_PROJECT || 'demo-firekeeper';
export const EMU_IS_REFERENCE = process.env.FK_EMU_IS_REFERENCE === '1';

// Both server modes the client SDK is run against. `skip` is false or a reason string.
export const MODES = [
  {
    name: 'emulator',
    url: process.env.FK_EMU_URL,
    // Emulator mode accepts any non-empty API key.
    apiKey: 'fk-interop-any-key',
    skip: process.env.FK_EMU_URL ? false : 'FK_EMU_URL is not set (run interop/run.sh)',
  },
  {
    name: 'default',
    url: process.env.FK_PROD_URL,
    apiKey: process.env.FK_PROD_API_KEY,
    skip:
      process.env.FK_PROD_URL && process.env.FK_PROD_API_KEY
        ? false
        : 'FK_PROD_URL / FK_PROD_API_KEY are not set (run interop/run.sh)',
  },
];

export function uniqueEmail(tag) {
  return `${tag}-${Date.now()}-${randomBytes(4).toString('hex')}@example.com`;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

let appCounter = 0;

// A fresh client app + Auth instance wired to `url`. Each call gets its own app so
// sessions never leak between tests.
export function clientAuth(url, apiKey) {
  appCounter += 1;
  const app = initializeApp(
    { apiKey, projectId: PROJECT, authDomain: `${PROJECT}.firebaseapp.com` },
    `fk-interop-${process.pid}-${appCounter}`,
  );
  const auth = getAuth(app);
  connectAuthEmulator(auth, url, { disableWarnings: true });
  return { app, auth, close: () => deleteApp(app) };
}

export function decodeJwt(token) {
  const parts = token.split('.');
  if (parts.length !== 3) throw new Error(`not a JWT: ${token.slice(0, 40)}...`);
  const dec = (s) => JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
  return { header: dec(parts[0]), payload: dec(parts[1]), signature: parts[2] };
}

// Awaits `promise` and asserts that it rejects with a Firebase error whose code is one
// of `codes`. Returns the error.
export async function expectAuthError(promise, codes, what) {
  let result;
  try {
    result = await promise;
  } catch (err) {
    if (!codes.includes(err?.code)) {
      throw new Error(
        `${what}: expected one of [${codes.join(', ')}], got ${err?.code}: ${err?.message}`,
      );
    }
    return err;
  }
  throw new Error(`${what}: expected one of [${codes.join(', ')}], but it succeeded (${result})`);
}

// POST to an Identity Toolkit end-user endpoint, returning {status, body}.
export async function itPost(baseUrl, endpoint, apiKey, body) {
  const res = await fetch(
    `${baseUrl}/identitytoolkit.googleapis.com/v1/${endpoint}?key=${encodeURIComponent(apiKey)}`,
    {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    },
  );
  return { status: res.status, body: await res.json() };
}

// --- Session helpers: admin REST calls, Secure Token refreshes, the Firekeeper session API ---

// The admin Bearer token of a mode: `owner` in emulator mode, FK_PROD_ADMIN_TOKEN otherwise.
export function adminTokenFor(mode) {
  return mode.name === 'emulator' ? 'owner' : process.env.FK_PROD_ADMIN_TOKEN;
}

// A request with an admin Bearer token; returns {status, body} (body is null when empty).
export async function adminFetch(baseUrl, path, token, { method = 'GET', body } = {}) {
  const res = await fetch(`${baseUrl}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

// Revokes every refresh token of `uid` the way the Admin SDKs do: accounts:update with
// validSince = now (seconds). Returns {status, body}.
export function revokeTokensRest(mode, uid) {
  return adminFetch(
    mode.url,
    `/identitytoolkit.googleapis.com/v1/projects/${PROJECT}/accounts:update`,
    adminTokenFor(mode),
    { method: 'POST', body: { localId: uid, validSince: Math.floor(Date.now() / 1000) } },
  );
}

// POST to a Firekeeper end-user session endpoint (`sessions:list`, `sessions:revokeOthers`,
// ...) with an API key; returns {status, body}.
export async function fkSessionPost(baseUrl, endpoint, apiKey, body) {
  const res = await fetch(`${baseUrl}/firekeeper/v1/${endpoint}?key=${encodeURIComponent(apiKey)}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

// firebase-admin in emulator mode against `url` (Bearer owner), in an app of its own.
export async function emulatorAdmin(url, name) {
  process.env.FIREBASE_AUTH_EMULATOR_HOST = url.replace(/^https?:\/\//, '');
  const { initializeApp, deleteApp: deleteAdminApp } = await import('firebase-admin/app');
  const { getAuth: getAdminAuth } = await import('firebase-admin/auth');
  const app = initializeApp({ projectId: PROJECT }, `${name}-${process.pid}`);
  return { auth: getAdminAuth(app), close: () => deleteAdminApp(app) };
}
