// Sign-in page script, following Firebase's "Manage session cookies" flow: sign in with the
// client SDK (no client-side persistence), hand the ID token and the CSRF cookie to
// /sessionLogin, which sets an HttpOnly session cookie, then sign the client out and go on
// with the server-side session alone. Bundled by `npm run build` into ../static/login.js.
import { initializeApp } from 'firebase/app';
import {
  connectAuthEmulator,
  getAuth,
  inMemoryPersistence,
  setPersistence,
  signInWithEmailAndPassword,
  signOut,
} from 'firebase/auth';

// {"apiKey", "projectId", "authUrl"}, written into the page by the site.
const config = JSON.parse(document.getElementById('config').textContent);

const app = initializeApp({
  apiKey: config.apiKey,
  projectId: config.projectId,
  authDomain: 'localhost',
});
const auth = getAuth(app);
// Points the client at the Firekeeper server; the server keeps its own mode.
connectAuthEmulator(auth, config.authUrl, { disableWarnings: true });
// Persistence NONE: the session cookie is the only state that outlives this page.
const ready = setPersistence(auth, inMemoryPersistence);

const emailInput = document.getElementById('email');
const passwordInput = document.getElementById('password');
const button = document.getElementById('signin');
const errorBox = document.getElementById('error');

function getCookie(name) {
  for (const part of document.cookie.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return decodeURIComponent(part.slice(eq + 1).trim());
  }
  return '';
}

// A readable message from the site's JSON error, whatever its shape.
async function responseError(res) {
  let detail = '';
  try {
    const body = await res.json();
    const err = body?.error ?? body?.message ?? body;
    detail = typeof err === 'string' ? err : (err?.message ?? JSON.stringify(err));
  } catch {
    // not JSON: the status says enough
  }
  return new Error(`Sign-in refused (HTTP ${res.status})${detail ? `: ${detail}` : ''}`);
}

async function postIdTokenToSessionLogin(idToken, csrfToken) {
  const res = await fetch('/sessionLogin', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ idToken, csrfToken }),
    credentials: 'same-origin',
  });
  if (!res.ok) throw await responseError(res);
}

async function signIn() {
  await ready;
  const { user } = await signInWithEmailAndPassword(auth, emailInput.value, passwordInput.value);
  const idToken = await user.getIdToken();
  await postIdTokenToSessionLogin(idToken, getCookie('csrfToken'));
  await signOut(auth);
  window.location.assign('/profile');
}

async function onSubmit(event) {
  event.preventDefault();
  errorBox.textContent = '';
  button.disabled = true;
  try {
    await signIn();
  } catch (err) {
    errorBox.textContent = err?.message || String(err);
    // Leave no client-side user behind after a refused session.
    await signOut(auth).catch(() => {});
    button.disabled = false;
  }
}

const form = button.closest('form');
if (form) form.addEventListener('submit', onSubmit);
else button.addEventListener('click', onSubmit);
