// Email actions with the real firebase JS client, a real mail server and the Admin SDK:
// - a default-mode server of its own sends through a local SMTP server (STARTTLS required,
//   login required, a private CA the server is told to trust); the client resets a
//   password, verifies an email with applyActionCode and signs in with an email link, all
//   from the links in the received messages; after the reset the old refresh token is
//   refused with TOKEN_EXPIRED;
// - firebase-admin (emulator mode, against FK_EMU_URL) generates the same kinds of links,
//   and the client completes them.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  applyActionCode,
  checkActionCode,
  confirmPasswordReset,
  createUserWithEmailAndPassword,
  getAdditionalUserInfo,
  isSignInWithEmailLink,
  sendEmailVerification,
  sendPasswordResetEmail,
  sendSignInLinkToEmail,
  signInWithEmailAndPassword,
  signInWithEmailLink,
  verifyPasswordResetCode,
} from 'firebase/auth';
import { clientAuth, emulatorAdmin, expectAuthError, MODES, PROJECT, uniqueEmail } from './helpers.mjs';

const FK_BIN = process.env.FK_BIN
  ? path.resolve(process.cwd(), process.env.FK_BIN)
  : path.resolve(import.meta.dirname, '../../target/debug/firekeeper');
const SINK = path.resolve(import.meta.dirname, '../smtp_sink.py');
const SMTP_USER = 'firekeeper-mailer';
const SMTP_PASSWORD = 'sink-Password-1';
const PASSWORD = 'email-Password-1';

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

// Starts `cmd`, resolving with the first match of `pattern` in its output.
function startProcess(cmd, args, env, pattern, what) {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} not ready:\n${log}`)), 60_000);
    const onData = (chunk) => {
      log += chunk.toString();
      const m = log.match(pattern);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${code}):\n${log}`));
    });
  });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }
  };
  return { child, ready, stop, log: () => log };
}

// --- MIME, just enough for the messages the server sends ---

function decodeQuotedPrintable(text) {
  const bytes = [];
  const soft = text.replace(/=\r?\n/g, '');
  for (let i = 0; i < soft.length; i += 1) {
    if (soft[i] === '=' && /^[0-9A-F]{2}$/i.test(soft.slice(i + 1, i + 3))) {
      bytes.push(parseInt(soft.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(soft[i], 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

function decodeHeader(value) {
  return value.replace(/=\?utf-8\?([bq])\?([^?]*)\?=/gi, (_, enc, data) =>
    enc.toLowerCase() === 'b'
      ? Buffer.from(data, 'base64').toString('utf8')
      : decodeQuotedPrintable(data.replace(/_/g, ' ')),
  ).replace(/\?=\s+=\?/g, '');
}

function parseHeaders(block) {
  const headers = {};
  for (const line of block.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return headers;
}

function decodeBody(headers, body) {
  const enc = (headers['content-transfer-encoding'] || '').toLowerCase();
  if (enc === 'base64') return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  if (enc === 'quoted-printable') return decodeQuotedPrintable(body);
  return body;
}

// {subject, text, html} of a raw message (multipart/alternative).
function parseMessage(raw) {
  const split = raw.search(/\r?\n\r?\n/);
  const headers = parseHeaders(raw.slice(0, split));
  const body = raw.slice(split).replace(/^\r?\n\r?\n/, '');
  const out = { headers, subject: decodeHeader(headers.subject || '') };
  const boundary = /boundary="?([^";]+)"?/i.exec(headers['content-type'] || '')?.[1];
  const parts = boundary ? body.split(`--${boundary}`).slice(1, -1) : [raw];
  for (const part of parts) {
    const p = part.replace(/^\r?\n/, '');
    const cut = p.search(/\r?\n\r?\n/);
    const h = parseHeaders(p.slice(0, cut));
    const content = decodeBody(h, p.slice(cut).replace(/^\r?\n\r?\n/, ''));
    if ((h['content-type'] || '').startsWith('text/plain')) out.text = content;
    if ((h['content-type'] || '').startsWith('text/html')) out.html = content;
  }
  return out;
}

const linkIn = (mail) => {
  const m = /https?:\/\/\S+/.exec(mail.text);
  assert.ok(m, `no link in:\n${mail.text}`);
  return m[0];
};
const param = (link, name) => new URL(link).searchParams.get(name);

async function refresh(url, apiKey, refreshToken) {
  const res = await fetch(`${url}/securetoken.googleapis.com/v1/token?key=${apiKey}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }),
  });
  return { status: res.status, body: await res.json() };
}

describe('email actions through a real mail server (default mode)', () => {
  let dir;
  let sink;
  let fk;
  let url;
  let apiKey;
  const seen = new Set();

  // The next message to `to` the sink received, waiting up to 10 s.
  async function mailTo(to) {
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      for (const f of readdirSync(dir).filter((n) => n.endsWith('.json')).sort()) {
        if (seen.has(f)) continue;
        const meta = JSON.parse(readFileSync(path.join(dir, f), 'utf8'));
        if (!meta.to.includes(to)) continue;
        seen.add(f);
        const raw = readFileSync(path.join(dir, f.replace(/\.json$/, '.eml')), 'utf8');
        return { meta, ...parseMessage(raw) };
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`no mail to ${to} within 10 s`);
  }

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'fk-mail-'));
    const python = process.env.FK_PYTHON || 'python3';
    sink = startProcess(python, [SINK, path.join(dir, 'sink'), SMTP_USER, SMTP_PASSWORD], {}, /ready (\d+)/, 'smtp sink');
    const [, smtpPort] = await sink.ready;
    dir = path.join(dir, 'sink');
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'fk-mail-data-'));
    apiKey = execFileSync(FK_BIN, ['api-keys', 'create', '--data-dir', dataDir, '--project', PROJECT], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    }).trim();
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    fk = startProcess(
      FK_BIN,
      ['serve', '--listen', `127.0.0.1:${port}`, '--rtdb-listen', '127.0.0.1:0', '--data-dir', dataDir, '--project', PROJECT],
      {
        FIREKEEPER_PUBLIC_URL: url,
        FIREKEEPER_SMTP_HOST: 'localhost',
        FIREKEEPER_SMTP_PORT: smtpPort,
        FIREKEEPER_SMTP_SECURITY: 'starttls',
        FIREKEEPER_SMTP_USERNAME: SMTP_USER,
        FIREKEEPER_SMTP_PASSWORD: SMTP_PASSWORD,
        FIREKEEPER_SMTP_FROM: 'Interop App <auth@interop.example>',
        FIREKEEPER_SMTP_CA_FILE: path.join(dir, 'ca.pem'),
      },
      /listening on http/,
      'firekeeper',
    );
    fk.dataDir = dataDir;
    await fk.ready;
  });

  after(async () => {
    await fk?.stop();
    await sink?.stop();
    if (fk?.dataDir) rmSync(fk.dataDir, { recursive: true, force: true });
    if (dir) rmSync(path.dirname(dir), { recursive: true, force: true });
  });

  it('resets a password from the emailed link; the old refresh token is refused', async () => {
    const ctx = clientAuth(url, apiKey);
    try {
      const email = uniqueEmail('mail-reset');
      const cred = await createUserWithEmailAndPassword(ctx.auth, email, PASSWORD);
      const oldRefresh = cred.user.refreshToken;
      assert.equal((await refresh(url, apiKey, oldRefresh)).status, 200);
      await new Promise((r) => setTimeout(r, 1100)); // the reset is a later second

      ctx.auth.languageCode = 'fr';
      await sendPasswordResetEmail(ctx.auth, email, { url: 'http://localhost/after-reset' });
      const mail = await mailTo(email);
      // Delivered over STARTTLS, logged in, from the configured sender, in French.
      assert.equal(mail.meta.tls, true);
      assert.equal(mail.meta.login, SMTP_USER);
      assert.equal(mail.meta.from, 'auth@interop.example');
      assert.match(mail.subject, /Réinitialisez/);
      const link = linkIn(mail);
      assert.ok(link.startsWith(`${url}/__/auth/action?mode=resetPassword&oobCode=`), link);
      assert.equal(param(link, 'continueUrl'), 'http://localhost/after-reset');
      assert.equal(param(link, 'lang'), 'fr');
      assert.ok(mail.html.includes('href="'), 'an HTML part with the link');
      const code = param(link, 'oobCode');

      assert.equal(await verifyPasswordResetCode(ctx.auth, code), email);
      await confirmPasswordReset(ctx.auth, code, 'email-Password-2');
      await expectAuthError(
        confirmPasswordReset(ctx.auth, code, 'email-Password-3'),
        ['auth/invalid-action-code'],
        'a used reset code',
      );
      const again = await signInWithEmailAndPassword(ctx.auth, email, 'email-Password-2');
      assert.equal(again.user.uid, cred.user.uid);
      assert.equal(again.user.emailVerified, true);
      await expectAuthError(
        signInWithEmailAndPassword(ctx.auth, email, PASSWORD),
        ['auth/invalid-credential', 'auth/wrong-password'],
        'the old password',
      );
      const old = await refresh(url, apiKey, oldRefresh);
      assert.equal(old.status, 400);
      assert.equal(old.body.error.message, 'TOKEN_EXPIRED');
    } finally {
      await ctx.close();
    }
  });

  it('verifies an email with applyActionCode', async () => {
    const ctx = clientAuth(url, apiKey);
    try {
      const email = uniqueEmail('mail-verify');
      const { user } = await createUserWithEmailAndPassword(ctx.auth, email, PASSWORD);
      assert.equal(user.emailVerified, false);
      await sendEmailVerification(user);
      const mail = await mailTo(email);
      assert.match(mail.subject, /Verify your email/);
      const code = param(linkIn(mail), 'oobCode');
      const info = await checkActionCode(ctx.auth, code);
      assert.equal(info.operation, 'VERIFY_EMAIL');
      assert.equal(info.data.email, email);
      await applyActionCode(ctx.auth, code);
      await user.reload();
      assert.equal(user.emailVerified, true);
      await expectAuthError(applyActionCode(ctx.auth, code), ['auth/invalid-action-code'], 'a used code');
    } finally {
      await ctx.close();
    }
  });

  it('signs in with an emailed sign-in link', async () => {
    const ctx = clientAuth(url, apiKey);
    try {
      const email = uniqueEmail('mail-link');
      const settings = { url: 'http://localhost/finish-sign-in', handleCodeInApp: true };
      await expectAuthError(
        sendSignInLinkToEmail(ctx.auth, email, { ...settings, url: 'https://elsewhere.example/x' }),
        ['auth/unauthorized-continue-uri', 'auth/unauthorized-domain'],
        'a continue URL outside the authorized domains',
      );
      await sendSignInLinkToEmail(ctx.auth, email, settings);
      const link = linkIn(await mailTo(email));
      assert.ok(isSignInWithEmailLink(ctx.auth, link), link);
      const cred = await signInWithEmailLink(ctx.auth, email, link);
      assert.equal(cred.user.email, email);
      assert.equal(cred.user.emailVerified, true);
      assert.equal(getAdditionalUserInfo(cred).isNewUser, true);
      await expectAuthError(signInWithEmailLink(ctx.auth, email, link), ['auth/invalid-action-code'], 'a used link');

      await sendSignInLinkToEmail(ctx.auth, email, settings);
      const second = await signInWithEmailLink(ctx.auth, email, linkIn(await mailTo(email)));
      assert.equal(second.user.uid, cred.user.uid);
      assert.equal(getAdditionalUserInfo(second).isNewUser, false);
    } finally {
      await ctx.close();
    }
  });
});

const emu = MODES.find((m) => m.name === 'emulator');

describe('links generated by firebase-admin (emulator mode)', { skip: emu.skip }, () => {
  let adminApp;
  let admin;

  before(async () => {
    adminApp = await emulatorAdmin(emu.url, 'fk-email-admin');
    admin = adminApp.auth;
  });

  after(() => adminApp?.close());

  it('completes a reset, a verification and an email-link sign-in', async () => {
    const ctx = clientAuth(emu.url, emu.apiKey);
    try {
      const email = uniqueEmail('admin-links');
      const cred = await createUserWithEmailAndPassword(ctx.auth, email, PASSWORD);
      const oldRefresh = cred.user.refreshToken;
      await new Promise((r) => setTimeout(r, 1100));

      const reset = await admin.generatePasswordResetLink(email, { url: 'http://localhost/done' });
      assert.ok(reset.startsWith(`${emu.url}/emulator/action?mode=resetPassword`), reset);
      assert.equal(param(reset, 'continueUrl'), 'http://localhost/done');
      await confirmPasswordReset(ctx.auth, param(reset, 'oobCode'), 'email-Password-9');
      const signedIn = await signInWithEmailAndPassword(ctx.auth, email, 'email-Password-9');
      assert.equal(signedIn.user.uid, cred.user.uid);
      const old = await refresh(emu.url, emu.apiKey, oldRefresh);
      assert.equal(old.status, 400);
      assert.equal(old.body.error.message, 'TOKEN_EXPIRED');

      const verify = await admin.generateEmailVerificationLink(email);
      await applyActionCode(ctx.auth, param(verify, 'oobCode'));
      assert.equal((await admin.getUser(cred.user.uid)).emailVerified, true);

      const linkEmail = uniqueEmail('admin-signin');
      const signInLink = await admin.generateSignInWithEmailLink(linkEmail, {
        url: 'http://localhost/finish',
        handleCodeInApp: true,
      });
      assert.ok(isSignInWithEmailLink(ctx.auth, signInLink), signInLink);
      const viaLink = await signInWithEmailLink(ctx.auth, linkEmail, signInLink);
      assert.equal(viaLink.user.email, linkEmail);
      assert.equal((await admin.getUserByEmail(linkEmail)).uid, viaLink.user.uid);
    } finally {
      await ctx.close();
    }
  });
});
