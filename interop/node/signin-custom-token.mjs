#!/usr/bin/env node
// Usage: node signin-custom-token.mjs URL APIKEY TOKEN
//
// Signs in to the server at URL with the firebase JS client's signInWithCustomToken and
// prints {"uid": ..., "claims": {...}} (claims from getIdTokenResult) as JSON on stdout.
// On failure prints {"error": code, "message": ...} on stderr and exits with status 1.
import { deleteApp, initializeApp } from 'firebase/app';
import { connectAuthEmulator, getAuth, signInWithCustomToken } from 'firebase/auth';

const [url, apiKey, token] = process.argv.slice(2);
if (!url || !apiKey || !token) {
  process.stderr.write('usage: signin-custom-token.mjs URL APIKEY TOKEN\n');
  process.exit(2);
}

const project = process.env.FK_PROJECT || 'demo-firekeeper';
const app = initializeApp({ apiKey, projectId: project, authDomain: `${project}.firebaseapp.com` });
const auth = getAuth(app);
connectAuthEmulator(auth, url, { disableWarnings: true });

let status = 0;
try {
  const cred = await signInWithCustomToken(auth, token);
  const result = await cred.user.getIdTokenResult();
  process.stdout.write(`${JSON.stringify({ uid: cred.user.uid, claims: result.claims })}\n`);
} catch (err) {
  process.stderr.write(`${JSON.stringify({ error: err?.code ?? null, message: String(err?.message ?? err) })}\n`);
  status = 1;
} finally {
  await deleteApp(app);
}
process.exit(status);
