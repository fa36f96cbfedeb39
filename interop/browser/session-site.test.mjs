// examples/session-site end to end in headless Chromium: the real login page and bundle,
// session cookies from a default-mode Firekeeper server, custom claims, sign-out with and
// without revocation, CSRF, tampered cookies, and expiry (site processes under faketime).
//
// Environment:
//   FK_PROD_URL, FK_PROD_API_KEY, FK_PROD_ADMIN_TOKEN, FK_PROJECT  as interop/run.sh exports
//   FK_SITE_BIN     the session-site binary
//   FK_SITE_STATIC  its static dir, holding the built login.js (npm run build in
//                   examples/session-site/web)
//   CHROMIUM_PATH   default /usr/bin/chromium (Debian's chromium package)
// Also needs `faketime` (Debian package faketime) on PATH.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium } from 'playwright-core';

const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const PROJECT = process.env.FK_PROJECT || 'demo-firekeeper';
const { FK_PROD_URL, FK_PROD_API_KEY, FK_PROD_ADMIN_TOKEN, FK_SITE_BIN, FK_SITE_STATIC } =
  process.env;
const REQUIRED = ['FK_PROD_URL', 'FK_PROD_API_KEY', 'FK_PROD_ADMIN_TOKEN', 'FK_SITE_BIN', 'FK_SITE_STATIC'];
const missing = REQUIRED.filter((name) => !process.env[name]);
const SKIP = missing.length ? `${missing.join(', ')} not set` : false;

const PASSWORD = 'site-Password-1';
// Past the longest session cookie (two weeks): every cookie has expired there.
const EXPIRED_SHIFT = '+15d';
// Past /sessionLogin's five-minute limit on auth_time, well within any cookie's life.
const LATER_SHIFT = '+10m';
const LATER_SECS = 600;
const READY_MS = 30_000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

// --- Site processes -------------------------------------------------------------------

const sites = [];

// Starts the site on a free loopback port, optionally under `faketime -f SHIFT`. Browsed as
// http://localhost:PORT, a secure context, so the site's Secure cookies are kept.
async function startSite(shift) {
  const port = await freePort();
  const siteArgs = [
    '--listen', `127.0.0.1:${port}`,
    '--firekeeper', FK_PROD_URL,
    '--project', PROJECT,
    '--api-key', FK_PROD_API_KEY,
    '--admin-token', FK_PROD_ADMIN_TOKEN,
    '--static-dir', FK_SITE_STATIC,
  ];
  const [cmd, argv] = shift
    ? ['faketime', ['-f', shift, FK_SITE_BIN, ...siteArgs]]
    : [FK_SITE_BIN, siteArgs];
  const env = { ...process.env };
  if (shift) env.FAKETIME_DONT_FAKE_MONOTONIC = '1';
  // Own process group: faketime forks the site, and stopping the group stops both.
  const child = spawn(cmd, argv, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const site = {
    name: shift ? `site(faketime ${shift})` : 'site',
    child,
    port,
    url: `http://localhost:${port}`,
    log: '',
    exited: null,
  };
  const append = (chunk) => {
    site.log = (site.log + chunk).slice(-20_000);
  };
  child.stdout.on('data', append);
  child.stderr.on('data', append);
  child.on('exit', (code, signal) => (site.exited = `exit ${code ?? signal}`));
  child.on('error', (err) => (site.exited = err.message));
  sites.push(site);

  const deadline = Date.now() + READY_MS;
  for (;;) {
    if (site.exited !== null) {
      throw new Error(`${site.name} ended (${site.exited}) before answering:\n${site.log}`);
    }
    try {
      await fetch(`http://127.0.0.1:${port}/login`, {
        redirect: 'manual',
        signal: AbortSignal.timeout(1000),
      });
      return site;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      throw new Error(`${site.name} did not answer within ${READY_MS} ms:\n${site.log}`);
    }
    await sleep(100);
  }
}

async function stopSite(site) {
  if (site.exited !== null) return;
  const ended = new Promise((resolve) => site.child.once('exit', resolve));
  const signal = (sig) => {
    try {
      process.kill(-site.child.pid, sig);
    } catch {
      // already gone
    }
  };
  signal('SIGTERM');
  const timer = setTimeout(() => signal('SIGKILL'), 5000);
  await ended;
  clearTimeout(timer);
  // faketime's forked child may outlive the wrapper for a moment.
  signal('SIGKILL');
}

// --- Firekeeper REST ------------------------------------------------------------------

const IT = () => `${FK_PROD_URL}/identitytoolkit.googleapis.com/v1`;

async function adminPost(op, body) {
  const res = await fetch(`${IT()}/projects/${PROJECT}/${op}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${FK_PROD_ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const json = await res.json();
  assert.equal(res.status, 200, `admin ${op}: ${JSON.stringify(json)}`);
  return json;
}

async function createUser(tag) {
  const email = `${tag}-${Date.now()}-${randomBytes(3).toString('hex')}@example.com`;
  const { localId } = await adminPost('accounts', { email, password: PASSWORD });
  assert.ok(localId, 'accounts create returned a localId');
  return { email, uid: localId };
}

const setClaims = (uid, claims) =>
  adminPost('accounts:update', { localId: uid, customAttributes: JSON.stringify(claims) });

async function restIdToken(email) {
  const res = await fetch(
    `${IT()}/accounts:signInWithPassword?key=${encodeURIComponent(FK_PROD_API_KEY)}`,
    {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email, password: PASSWORD, returnSecureToken: true }),
    },
  );
  const json = await res.json();
  assert.equal(res.status, 200, `signInWithPassword: ${JSON.stringify(json)}`);
  return json.idToken;
}

// --- Browser helpers ------------------------------------------------------------------

let browser;

async function newPage() {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (err) => page.errors.push(String(err)));
  page.on('console', (msg) => msg.type() === 'error' && page.errors.push(msg.text()));
  return { context, page };
}

// Navigates and reports the final status and path and the statuses of redirects on the way.
async function visit(page, url) {
  const res = await page.goto(url);
  const redirects = [];
  for (let req = res.request().redirectedFrom(); req; req = req.redirectedFrom()) {
    redirects.unshift((await req.response()).status());
  }
  return { status: res.status(), path: new URL(page.url()).pathname, redirects, page };
}

async function expectLoginRedirect(page, url, what) {
  const got = await visit(page, url);
  assert.deepEqual(
    { path: got.path, redirects: got.redirects },
    { path: '/login', redirects: [303] },
    `${what}: expected a 303 to /login, got HTTP ${got.status} at ${got.path}`,
  );
}

async function expectProfile(page, site, user, what) {
  const got = await visit(page, `${site.url}/profile`);
  assert.equal(got.path, '/profile', `${what}: redirected to ${got.path}`);
  assert.equal(got.status, 200, `${what}: /profile status`);
  assert.equal((await page.textContent('#email'))?.trim(), user.email, `${what}: #email`);
  assert.equal((await page.textContent('#uid'))?.trim(), user.uid, `${what}: #uid`);
}

async function signInViaPage(page, site, email, password = PASSWORD) {
  await page.goto(`${site.url}/login`);
  await page.fill('#email', email);
  await page.fill('#password', password);
  const landed = page.waitForURL((u) => u.pathname === '/profile', { timeout: 20_000 });
  await page.click('#signin');
  try {
    await landed;
  } catch (err) {
    const shown = await page.textContent('#error').catch(() => '(no #error)');
    throw new Error(
      `sign-in on ${site.url}/login did not reach /profile; #error: ${JSON.stringify(shown)}; ` +
        `page errors: ${JSON.stringify(page.errors)}; ${err.message}`,
    );
  }
}

async function cookieNamed(context, name) {
  return (await context.cookies()).find((c) => c.name === name && c.domain === 'localhost');
}

async function sessionCookie(context, what) {
  const cookie = await cookieNamed(context, 'session');
  assert.ok(cookie?.value, `${what}: the browser holds a session cookie`);
  return cookie;
}

async function replaceSessionCookie(context, cookie) {
  await context.clearCookies({ name: 'session' });
  if (cookie) await context.addCookies([cookie]);
}

function jwtParts(jwt) {
  const [header, payload, signature] = jwt.split('.');
  const dec = (s) => JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
  return { header: dec(header), payload: dec(payload), signature, raw: [header, payload, signature] };
}

// Keys of signed-in users the Firebase client persisted (IndexedDB or localStorage).
function persistedUsers(page) {
  return page.evaluate(async () => {
    const idb = await new Promise((resolve) => {
      const open = indexedDB.open('firebaseLocalStorageDb');
      open.onerror = () => resolve([]);
      open.onsuccess = () => {
        const db = open.result;
        if (!db.objectStoreNames.contains('firebaseLocalStorage')) return resolve([]);
        const req = db.transaction('firebaseLocalStorage').objectStore('firebaseLocalStorage').getAllKeys();
        req.onsuccess = () => resolve(req.result.map(String));
        req.onerror = () => resolve([]);
      };
    });
    return [...idb, ...Object.keys(localStorage), ...Object.keys(sessionStorage)].filter((k) =>
      k.startsWith('firebase:authUser'),
    );
  });
}

// Submits a form of /profile; returns the status of the POST's response.
async function submitLogout(page, formId) {
  const [landed] = await Promise.all([
    page.waitForNavigation(),
    page.click(`#${formId} [type=submit]`),
  ]);
  const post = landed.request().redirectedFrom();
  assert.equal(post?.method(), 'POST', `#${formId} posted`);
  return (await post.response()).status();
}

// POST /sessionLogin from the page's own origin, as login.js does.
function postSessionLogin(page, idToken, csrfToken) {
  return page.evaluate(
    async ({ idToken, csrfToken }) => {
      const res = await fetch('/sessionLogin', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ idToken, csrfToken }),
      });
      return { status: res.status, text: await res.text() };
    },
    { idToken, csrfToken },
  );
}

// Waits until the current second is past `unixSecs`: validSince has one-second
// granularity (as in Firebase), so a revocation in the second a cookie was made or its
// sign-in happened may spare it.
async function waitPastSecond(unixSecs) {
  const ms = (unixSecs + 1) * 1000 - Date.now();
  if (ms > 0) await sleep(ms + 50);
}

// --- The tests ------------------------------------------------------------------------

describe('session-site in Chromium', { skip: SKIP }, () => {
  let site; // real clock
  let later; // faketime LATER_SHIFT
  let expired; // faketime EXPIRED_SHIFT
  let failed = false;

  const step = (name, fn) =>
    it(name, async () => {
      try {
        await fn();
      } catch (err) {
        failed = true;
        throw err;
      }
    });

  before(async () => {
    assert.ok(existsSync(FK_SITE_BIN), `FK_SITE_BIN=${FK_SITE_BIN} does not exist`);
    assert.ok(
      existsSync(path.join(FK_SITE_STATIC, 'login.js')),
      `${FK_SITE_STATIC}/login.js is missing: run npm ci && npm run build in examples/session-site/web`,
    );
    assert.ok(existsSync(CHROMIUM_PATH), `no Chromium at ${CHROMIUM_PATH} (set CHROMIUM_PATH)`);
    // allSettled: whatever started is stopped by after(), even when something else failed.
    const started = await Promise.allSettled([
      chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_ARGS }),
      startSite(null),
      startSite(LATER_SHIFT),
      startSite(EXPIRED_SHIFT),
    ]);
    [browser, site, later, expired] = started.map((r) => r.value);
    const failure = started.find((r) => r.status === 'rejected');
    if (failure) throw failure.reason;
  });

  after(async () => {
    await browser?.close();
    await Promise.all(sites.map(stopSite));
    if (failed) {
      for (const s of sites) {
        process.stderr.write(`----- ${s.name} log (tail) -----\n${s.log.slice(-4000)}\n`);
      }
    }
  });

  step('a signed-out visitor is sent to /login', async () => {
    const { context, page } = await newPage();
    try {
      await expectLoginRedirect(page, `${site.url}/profile`, '/profile');
      await expectLoginRedirect(page, `${site.url}/admin`, '/admin');
      const root = await visit(page, `${site.url}/`);
      assert.equal(root.path, '/login', '/ ends at /login');
      assert.equal(root.redirects.length, 2, `/ → /profile → /login, got ${root.redirects}`);
    } finally {
      await context.close();
    }
  });

  step('the login page carries its config and a readable Strict CSRF cookie', async () => {
    const { context, page } = await newPage();
    try {
      const got = await visit(page, `${site.url}/login`);
      assert.equal(got.status, 200);
      const config = JSON.parse(await page.textContent('script#config'));
      assert.deepEqual(
        { apiKey: config.apiKey, projectId: config.projectId, authUrl: config.authUrl?.replace(/\/$/, '') },
        { apiKey: FK_PROD_API_KEY, projectId: PROJECT, authUrl: FK_PROD_URL.replace(/\/$/, '') },
      );
      const csrf = await cookieNamed(context, 'csrfToken');
      assert.ok(csrf?.value, 'csrfToken cookie set');
      assert.equal(csrf.httpOnly, false, 'csrfToken is readable by JS');
      assert.equal(csrf.sameSite, 'Strict');
      assert.equal(csrf.path, '/');
      assert.equal(
        await page.evaluate(() => document.cookie.includes('csrfToken=')),
        true,
        'document.cookie shows csrfToken',
      );
    } finally {
      await context.close();
    }
  });

  step('a wrong password shows an error and sets no session', async () => {
    const user = await createUser('site-wrongpw');
    const { context, page } = await newPage();
    try {
      await page.goto(`${site.url}/login`);
      await page.fill('#email', user.email);
      await page.fill('#password', 'not-the-password');
      await page.click('#signin');
      await page.waitForFunction(() => document.getElementById('error').textContent.trim() !== '');
      const shown = await page.textContent('#error');
      assert.match(shown, /auth\/(invalid-credential|wrong-password)/, `#error: ${shown}`);
      assert.equal(new URL(page.url()).pathname, '/login');
      assert.equal(await cookieNamed(context, 'session'), undefined, 'no session cookie');
    } finally {
      await context.close();
    }
  });

  step('a sign-in the site refuses shows its error and leaves no user behind', async () => {
    const user = await createUser('site-refused');
    const { context, page } = await newPage();
    try {
      await page.goto(`${site.url}/login`);
      // Without its CSRF cookie the page posts an empty token, which /sessionLogin refuses.
      await context.clearCookies({ name: 'csrfToken' });
      await page.fill('#email', user.email);
      await page.fill('#password', PASSWORD);
      await page.click('#signin');
      await page.waitForFunction(() => document.getElementById('error').textContent.trim() !== '');
      const shown = await page.textContent('#error');
      assert.match(shown, /401/, `#error: ${shown}`);
      assert.equal(new URL(page.url()).pathname, '/login');
      assert.equal(await cookieNamed(context, 'session'), undefined, 'no session cookie');
      assert.deepEqual(await persistedUsers(page), [], 'no client-side user');
      assert.equal(await page.isEnabled('#signin'), true, 'the button works again');
    } finally {
      await context.close();
    }
  });

  step('signing in through /login lands on /profile with an HttpOnly session cookie', async () => {
    const user = await createUser('site-signin');
    const { context, page } = await newPage();
    try {
      // While /sessionLogin is asked, the client is signed in: nothing may be persisted.
      let persisted;
      await page.route('**/sessionLogin', async (route) => {
        persisted = await persistedUsers(page);
        await route.continue();
      });
      await signInViaPage(page, site, user.email);
      assert.deepEqual(persisted, [], 'persistence NONE: no client-side user stored during sign-in');
      assert.equal((await page.textContent('#email'))?.trim(), user.email, '#email');
      assert.equal((await page.textContent('#uid'))?.trim(), user.uid, '#uid');
      const cookie = await sessionCookie(context, 'after sign-in');
      assert.equal(cookie.httpOnly, true, 'session cookie is HttpOnly');
      assert.equal(cookie.secure, true, 'session cookie is Secure');
      assert.equal(
        await page.evaluate(() => document.cookie.includes('session=')),
        false,
        'document.cookie does not show the session cookie',
      );
      const { header, payload } = jwtParts(cookie.value);
      assert.equal(header.alg, 'RS256');
      assert.equal(payload.iss, `https://session.firebase.google.com/${PROJECT}`);
      assert.equal(payload.sub, user.uid);
      assert.deepEqual(await persistedUsers(page), [], 'no client-side user after sign-in');
      await expectProfile(page, site, user, 'a second visit');
    } finally {
      await context.close();
    }
  });

  step('/admin follows the cookie’s claims: a new claim needs a new sign-in', async () => {
    const user = await createUser('site-admin');
    const { context, page } = await newPage();
    try {
      await signInViaPage(page, site, user.email);
      let got = await visit(page, `${site.url}/admin`);
      assert.equal(got.status, 403, 'no admin claim: 403');
      assert.doesNotMatch(await page.content(), /Admin area/);

      await setClaims(user.uid, { admin: true });
      got = await visit(page, `${site.url}/admin`);
      assert.equal(got.status, 403, 'the old cookie keeps the old claims: still 403');
      await expectProfile(page, site, user, 'the old cookie still signs in');

      await signInViaPage(page, site, user.email);
      got = await visit(page, `${site.url}/admin`);
      assert.equal(got.status, 200, 'after signing in again: 200');
      assert.equal(got.path, '/admin');
      assert.match(await page.content(), /Admin area/);
    } finally {
      await context.close();
    }
  });

  // Two browsers ("devices") signed in as one user; `first` signs out.
  async function twoDevices(tag) {
    const user = await createUser(tag);
    const first = await newPage();
    const second = await newPage();
    await signInViaPage(first.page, site, user.email);
    await signInViaPage(second.page, site, user.email);
    const saved = await sessionCookie(first.context, 'first device');
    const other = await sessionCookie(second.context, 'second device');
    // Revocation by validSince spares what was made in its own second.
    const newest = Math.max(
      ...[saved, other].flatMap((c) => [jwtParts(c.value).payload.iat, jwtParts(c.value).payload.auth_time]),
    );
    await waitPastSecond(newest);
    const close = () => Promise.all([first.context.close(), second.context.close()]);
    return { user, first, second, saved, close };
  }

  step('plain sign-out ends this session only', async () => {
    const { user, first, second, saved, close } = await twoDevices('site-logout');
    try {
      const { context, page } = first;
      await expectProfile(page, site, user, 'before sign-out');
      assert.equal(await submitLogout(page, 'logout'), 303, 'sign-out answers 303');
      assert.equal(new URL(page.url()).pathname, '/login');
      assert.equal(await cookieNamed(context, 'session'), undefined, 'session cookie cleared');
      await expectLoginRedirect(page, `${site.url}/profile`, '/profile after sign-out');

      // The site ends the cookie's sign-in session, so a copy stops working too ...
      await replaceSessionCookie(context, saved);
      await expectLoginRedirect(page, `${site.url}/profile`, 'a saved copy after a plain sign-out');
      // ... while the user's other device stays signed in.
      await expectProfile(second.page, site, user, 'the other device after a plain sign-out');
    } finally {
      await close();
    }
  });

  step('sign-out with revoke ends every session of the user', async () => {
    const { user, first, second, saved, close } = await twoDevices('site-revoke');
    try {
      const { context, page } = first;
      await expectProfile(page, site, user, 'before sign-out');
      // A sign-out with a forged CSRF token neither clears nor revokes anything.
      const forged = await page.evaluate(async () => {
        const res = await fetch('/sessionLogout', {
          method: 'POST',
          body: new URLSearchParams({ csrfToken: 'forged', revoke: 'true' }),
          redirect: 'manual',
        });
        return res.type === 'opaqueredirect' ? 'a redirect' : `HTTP ${res.status}`;
      });
      assert.ok((await cookieNamed(context, 'session'))?.value, `forged sign-out (${forged}): cookie kept`);
      await expectProfile(page, site, user, 'after a forged sign-out');
      await expectProfile(second.page, site, user, 'the other device after a forged sign-out');

      await page.goto(`${site.url}/profile`);
      assert.equal(await submitLogout(page, 'logout-revoke'), 303, 'sign-out with revoke answers 303');
      assert.equal(new URL(page.url()).pathname, '/login');
      assert.equal(await cookieNamed(context, 'session'), undefined, 'session cookie cleared');

      await replaceSessionCookie(context, saved);
      await expectLoginRedirect(page, `${site.url}/profile`, 'a saved copy after revoke');
      await replaceSessionCookie(context, saved);
      await expectLoginRedirect(page, `${site.url}/admin`, '/admin with a saved copy after revoke');
      await expectLoginRedirect(second.page, `${site.url}/profile`, 'the other device after revoke');

      await signInViaPage(page, site, user.email);
      await expectProfile(page, site, user, 'a new sign-in after revoke');
    } finally {
      await close();
    }
  });

  step('/sessionLogin refuses a CSRF token that is not the cookie’s', async () => {
    const user = await createUser('site-csrf');
    const { context, page } = await newPage();
    try {
      await page.goto(`${site.url}/login`);
      const csrf = (await cookieNamed(context, 'csrfToken'))?.value;
      assert.ok(csrf, 'csrfToken cookie');
      const idToken = await restIdToken(user.email);

      for (const [what, token] of [
        ['forged', `forged-${randomBytes(8).toString('hex')}`],
        ['empty', ''],
        ['the cookie with a character changed', csrf.slice(0, -1) + (csrf.endsWith('a') ? 'b' : 'a')],
      ]) {
        const res = await postSessionLogin(page, idToken, token);
        assert.equal(res.status, 401, `${what} CSRF token: ${res.text}`);
        assert.doesNotThrow(() => JSON.parse(res.text), `${what}: a JSON error (${res.text})`);
        assert.equal(await cookieNamed(context, 'session'), undefined, `${what}: no session cookie`);
      }
      await expectLoginRedirect(page, `${site.url}/profile`, '/profile after refused logins');

      // The same ID token with the cookie's own CSRF token (a new one: /login set it again).
      const ok = await postSessionLogin(page, idToken, (await cookieNamed(context, 'csrfToken')).value);
      assert.equal(ok.status, 200, ok.text);
      assert.deepEqual(JSON.parse(ok.text), { status: 'success' });
      await sessionCookie(context, 'after the genuine login');
      await expectProfile(page, site, user, 'after the genuine login');
    } finally {
      await context.close();
    }
  });

  step('tampered session cookies are refused', async () => {
    const user = await createUser('site-tamper');
    const { context, page } = await newPage();
    try {
      await signInViaPage(page, site, user.email);
      const good = await sessionCookie(context, 'after sign-in');
      const { payload, raw } = jwtParts(good.value);
      const [h, p, s] = raw;
      const b64 = (obj) => Buffer.from(JSON.stringify(obj)).toString('base64url');
      const mid = Math.floor(p.length / 2);
      const forged = {
        'one payload character changed': `${h}.${p.slice(0, mid)}${p[mid] === 'A' ? 'B' : 'A'}${p.slice(mid + 1)}.${s}`,
        'payload re-encoded with admin:true': `${h}.${b64({ ...payload, admin: true })}.${s}`,
        'alg none with admin:true': `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ ...payload, admin: true })}.`,
      };
      for (const [what, value] of Object.entries(forged)) {
        assert.notEqual(value, good.value);
        await replaceSessionCookie(context, { ...good, value });
        await expectLoginRedirect(page, `${site.url}/profile`, `/profile, ${what}`);
        await replaceSessionCookie(context, { ...good, value });
        await expectLoginRedirect(page, `${site.url}/admin`, `/admin, ${what}`);
      }
      // The untouched cookie still works: the refusals came from the tampering.
      await replaceSessionCookie(context, good);
      await expectProfile(page, site, user, 'the untouched cookie');
    } finally {
      await context.close();
    }
  });

  step('a cookie is refused by a site whose clock is past its expiry (faketime)', async () => {
    const user = await createUser('site-expiry');
    const { context, page } = await newPage();
    try {
      // The shifted processes really see shifted time: their HTTP Date header.
      for (const [s, secs] of [[later, LATER_SECS], [expired, 15 * 86400]]) {
        const res = await fetch(`http://127.0.0.1:${s.port}/login`, { redirect: 'manual' });
        const date = Date.parse(res.headers.get('date'));
        assert.ok(Number.isFinite(date), `${s.name} sends a Date header`);
        const offset = (date - Date.now()) / 1000;
        assert.ok(
          Math.abs(offset - secs) < 120,
          `${s.name}: its Date header is ${Math.round(offset)} s from now, expected ${secs}`,
        );
      }

      await signInViaPage(page, site, user.email);
      const cookie = await sessionCookie(context, 'after sign-in');
      const { exp } = jwtParts(cookie.value).payload;
      const life = exp - Date.now() / 1000;
      assert.ok(life > LATER_SECS, `cookie lifetime ${Math.round(life)} s outlasts ${LATER_SHIFT}`);
      assert.ok(life < 15 * 86400, `cookie lifetime ${Math.round(life)} s ends before ${EXPIRED_SHIFT}`);
      // Cookies are per host, not per port: every site on localhost gets this one.
      await expectProfile(page, site, user, 'the real-clock site');
      await expectProfile(page, later, user, `the ${LATER_SHIFT} site`);
      await expectLoginRedirect(page, `${expired.url}/profile`, `/profile on the ${EXPIRED_SHIFT} site`);
      await replaceSessionCookie(context, cookie);
      await expectLoginRedirect(page, `${expired.url}/admin`, `/admin on the ${EXPIRED_SHIFT} site`);
      await replaceSessionCookie(context, cookie);
      await expectProfile(page, site, user, 'the real-clock site afterwards');
    } finally {
      await context.close();
    }
  });

  step('/sessionLogin refuses an ID token whose sign-in is over five minutes old', async () => {
    const user = await createUser('site-authtime');
    const { context, page } = await newPage();
    try {
      // Fresh for the real clock, ten minutes old for the LATER_SHIFT site.
      const idToken = await restIdToken(user.email);
      await page.goto(`${later.url}/login`);
      const stale = await postSessionLogin(page, idToken, (await cookieNamed(context, 'csrfToken')).value);
      assert.equal(stale.status, 401, `auth_time ten minutes back: ${stale.text}`);
      assert.equal(await cookieNamed(context, 'session'), undefined, 'no session cookie');

      await page.goto(`${site.url}/login`);
      const fresh = await postSessionLogin(page, idToken, (await cookieNamed(context, 'csrfToken')).value);
      assert.equal(fresh.status, 200, `the same token on the real-clock site: ${fresh.text}`);
      await expectProfile(page, site, user, 'after the real-clock login');
    } finally {
      await context.close();
    }
  });
});
