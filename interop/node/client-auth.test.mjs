// The real firebase JS client (`firebase/auth`) against Firekeeper, in emulator mode and in
// default (production) mode. Both modes are reached through connectAuthEmulator; default
// mode uses a real API key of the project and RS256-signed tokens.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  createUserWithEmailAndPassword,
  deleteUser,
  EmailAuthProvider,
  reauthenticateWithCredential,
  signInAnonymously,
  signInWithEmailAndPassword,
  signOut,
  updatePassword,
  updateProfile,
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

const PASSWORD = 'first-Password-1';
const NEW_PASSWORD = 'second-Password-2';
// What the client makes of a failed password sign-in: INVALID_PASSWORD / EMAIL_NOT_FOUND
// without email-enumeration protection, INVALID_LOGIN_CREDENTIALS with it.
const BAD_PASSWORD_CODES = ['auth/wrong-password', 'auth/invalid-credential'];
const NO_USER_CODES = ['auth/user-not-found', 'auth/invalid-credential'];

// Runs `fn(ctx)` with a fresh client app; always deletes the app afterwards.
async function withClient(mode, fn) {
  const ctx = clientAuth(mode.url, mode.apiKey);
  try {
    return await fn(ctx);
  } finally {
    await ctx.close();
  }
}

function checkTokenShape(mode, token, uid) {
  const { header, payload, signature } = decodeJwt(token);
  if (mode.name === 'emulator') {
    assert.equal(header.alg, 'none', 'emulator-mode ID tokens are unsigned');
    assert.equal(signature, '', 'emulator-mode ID tokens have an empty signature');
  } else {
    assert.equal(header.alg, 'RS256');
    assert.ok(typeof header.kid === 'string' && header.kid.length > 0, 'RS256 token has a kid');
    assert.ok(signature.length > 0, 'RS256 token has a signature');
  }
  assert.equal(payload.iss, `https://securetoken.google.com/${PROJECT}`);
  assert.equal(payload.aud, PROJECT);
  assert.equal(payload.sub, uid);
  assert.equal(payload.user_id, uid);
  assert.equal(payload.exp - payload.iat, 3600);
  return { header, payload };
}

for (const mode of MODES) {
  describe(`firebase/auth client, ${mode.name} mode`, { skip: mode.skip }, () => {
    it('createUserWithEmailAndPassword, signOut, signInWithEmailAndPassword', async () => {
      await withClient(mode, async ({ auth }) => {
        const email = uniqueEmail('create');
        const cred = await createUserWithEmailAndPassword(auth, email, PASSWORD);
        const uid = cred.user.uid;
        assert.ok(uid && uid.length > 0 && uid.length <= 128);
        assert.equal(cred.user.email, email);
        assert.equal(cred.user.isAnonymous, false);
        assert.equal(cred.user.emailVerified, false);
        assert.equal(auth.currentUser?.uid, uid);
        assert.deepEqual(
          cred.user.providerData.map((p) => p.providerId),
          ['password'],
        );

        await signOut(auth);
        assert.equal(auth.currentUser, null);

        const again = await signInWithEmailAndPassword(auth, email, PASSWORD);
        assert.equal(again.user.uid, uid);
        assert.equal(auth.currentUser?.uid, uid);
        assert.equal(again.user.email, email);
      });
    });

    it('rejects a duplicate email and a wrong password', async () => {
      await withClient(mode, async ({ auth }) => {
        const email = uniqueEmail('dup');
        await createUserWithEmailAndPassword(auth, email, PASSWORD);
        await signOut(auth);
        await expectAuthError(
          createUserWithEmailAndPassword(auth, email, 'another-password'),
          ['auth/email-already-in-use'],
          'second sign-up with the same email',
        );
        await expectAuthError(
          signInWithEmailAndPassword(auth, email, 'not-the-password'),
          BAD_PASSWORD_CODES,
          'sign-in with a wrong password',
        );
        assert.equal(auth.currentUser, null);
      });
    });

    it('getIdToken(true) returns a different, fresh token for the same uid', async () => {
      await withClient(mode, async ({ auth }) => {
        const cred = await createUserWithEmailAndPassword(auth, uniqueEmail('refresh'), PASSWORD);
        const first = await cred.user.getIdToken();
        checkTokenShape(mode, first, cred.user.uid);
        // iat has one-second resolution: wait so the refreshed token must differ.
        await sleep(1100);
        const second = await cred.user.getIdToken(true);
        assert.notEqual(second, first, 'forced refresh must mint a new token');
        const a = decodeJwt(first).payload;
        const b = checkTokenShape(mode, second, cred.user.uid).payload;
        assert.ok(b.iat > a.iat, `refreshed iat ${b.iat} should be after ${a.iat}`);
        assert.equal(b.auth_time, a.auth_time, 'refresh keeps auth_time');
        assert.equal(b.firebase.sign_in_provider, 'password');
        // Without force the cached (still fresh) token is returned.
        assert.equal(await cred.user.getIdToken(), second);
      });
    });

    it('getIdTokenResult carries the password provider and email claims', async () => {
      await withClient(mode, async ({ auth }) => {
        const email = uniqueEmail('claims');
        const cred = await createUserWithEmailAndPassword(auth, email, PASSWORD);
        const result = await cred.user.getIdTokenResult();
        assert.equal(result.signInProvider, 'password');
        assert.equal(result.signInSecondFactor, null);
        assert.equal(result.claims.email, email);
        assert.equal(result.claims.email_verified, false);
        assert.equal(result.claims.sub, cred.user.uid);
        assert.equal(result.claims.user_id, cred.user.uid);
        assert.deepEqual(result.claims.firebase.identities, { email: [email] });
        assert.equal(result.claims.provider_id, undefined, 'provider_id is only for anonymous');
        const now = Date.now();
        const exp = Date.parse(result.expirationTime);
        assert.ok(exp > now + 3500_000 && exp <= now + 3605_000, `expirationTime ${result.expirationTime}`);
        assert.ok(Math.abs(Date.parse(result.authTime) - now) < 60_000, `authTime ${result.authTime}`);
        checkTokenShape(mode, result.token, cred.user.uid);
      });
    });

    it('updatePassword: the new password signs in, the old one fails', async () => {
      await withClient(mode, async ({ auth }) => {
        const email = uniqueEmail('pwchange');
        const cred = await createUserWithEmailAndPassword(auth, email, PASSWORD);
        const uid = cred.user.uid;
        await updatePassword(cred.user, NEW_PASSWORD);
        // The changing device keeps a working session.
        assert.equal(auth.currentUser?.uid, uid);
        const fresh = await auth.currentUser.getIdToken(true);
        checkTokenShape(mode, fresh, uid);

        await signOut(auth);
        await expectAuthError(
          signInWithEmailAndPassword(auth, email, PASSWORD),
          BAD_PASSWORD_CODES,
          'sign-in with the old password',
        );
        const again = await signInWithEmailAndPassword(auth, email, NEW_PASSWORD);
        assert.equal(again.user.uid, uid);
      });
    });

    it(
      'a password change ends the sessions of other devices',
      { skip: mode.name === 'emulator' && EMU_IS_REFERENCE && 'reference emulator refresh tokens ignore validSince' },
      async () => {
        const email = uniqueEmail('sessions');
        await withClient(mode, async ({ auth: a }) => {
          await withClient(mode, async ({ auth: b }) => {
            const created = await createUserWithEmailAndPassword(a, email, PASSWORD);
            const other = await signInWithEmailAndPassword(b, email, PASSWORD);
            assert.equal(other.user.uid, created.user.uid);
            // validSince has one-second resolution.
            await sleep(1100);
            await updatePassword(a.currentUser, NEW_PASSWORD);
            await expectAuthError(
              b.currentUser.getIdToken(true),
              ['auth/user-token-expired'],
              'refresh on the other device after a password change',
            );
            assert.equal(b.currentUser, null, 'the client signs out on TOKEN_EXPIRED');
            // The device that changed the password still refreshes.
            const t = await a.currentUser.getIdToken(true);
            assert.equal(decodeJwt(t).payload.sub, created.user.uid);
          });
        });
      },
    );

    it('reauthenticateWithCredential', async () => {
      await withClient(mode, async ({ auth }) => {
        const email = uniqueEmail('reauth');
        const cred = await createUserWithEmailAndPassword(auth, email, PASSWORD);
        const re = await reauthenticateWithCredential(
          cred.user,
          EmailAuthProvider.credential(email, PASSWORD),
        );
        assert.equal(re.user.uid, cred.user.uid);
        assert.equal(re.operationType, 'reauthenticate');
        assert.equal(auth.currentUser?.uid, cred.user.uid);

        await expectAuthError(
          reauthenticateWithCredential(cred.user, EmailAuthProvider.credential(email, 'wrong-pass')),
          BAD_PASSWORD_CODES,
          'reauthentication with a wrong password',
        );

        // Another account's credential must not reauthenticate this user.
        const otherEmail = uniqueEmail('reauth-other');
        await withClient(mode, async ({ auth: other }) => {
          await createUserWithEmailAndPassword(other, otherEmail, PASSWORD);
        });
        await expectAuthError(
          reauthenticateWithCredential(cred.user, EmailAuthProvider.credential(otherEmail, PASSWORD)),
          ['auth/user-mismatch'],
          "reauthentication with another user's credential",
        );
        assert.equal(auth.currentUser?.uid, cred.user.uid);
      });
    });

    it('updateProfile: displayName is visible after reload and in new tokens', async () => {
      await withClient(mode, async ({ auth }) => {
        const email = uniqueEmail('profile');
        const cred = await createUserWithEmailAndPassword(auth, email, PASSWORD);
        assert.equal(cred.user.displayName, null);
        const name = `Ada ${Date.now()}`;
        await updateProfile(cred.user, { displayName: name });
        assert.equal(auth.currentUser.displayName, name);
        await auth.currentUser.reload();
        assert.equal(auth.currentUser.displayName, name);
        const result = await auth.currentUser.getIdTokenResult(true);
        assert.equal(result.claims.name, name);

        // A separate client signing in sees the stored profile.
        await withClient(mode, async ({ auth: other }) => {
          const c = await signInWithEmailAndPassword(other, email, PASSWORD);
          assert.equal(c.user.displayName, name);
        });
      });
    });

    it('deleteUser: the account is gone and cannot sign in', async () => {
      await withClient(mode, async ({ auth }) => {
        const email = uniqueEmail('delete');
        const cred = await createUserWithEmailAndPassword(auth, email, PASSWORD);
        await deleteUser(cred.user);
        assert.equal(auth.currentUser, null);
        await expectAuthError(
          signInWithEmailAndPassword(auth, email, PASSWORD),
          NO_USER_CODES,
          'sign-in after deletion',
        );
        // The email is free again.
        const again = await createUserWithEmailAndPassword(auth, email, PASSWORD);
        assert.notEqual(again.user.uid, cred.user.uid);
      });
    });

    it('signInAnonymously', async () => {
      await withClient(mode, async ({ auth }) => {
        const cred = await signInAnonymously(auth);
        assert.equal(cred.user.isAnonymous, true);
        assert.equal(cred.user.email, null);
        assert.deepEqual(cred.user.providerData, []);
        const result = await cred.user.getIdTokenResult();
        assert.equal(result.signInProvider, 'anonymous');
        assert.equal(result.claims.provider_id, 'anonymous');
        assert.equal(result.claims.email, undefined);
        checkTokenShape(mode, result.token, cred.user.uid);

        // Already anonymous: the same user is returned.
        const again = await signInAnonymously(auth);
        assert.equal(again.user.uid, cred.user.uid);

        // A second client gets a different anonymous user.
        await withClient(mode, async ({ auth: other }) => {
          const c = await signInAnonymously(other);
          assert.notEqual(c.user.uid, cred.user.uid);
        });
      });
    });

    if (mode.name === 'default') {
      it('a wrong API key is refused with auth/api-key-not-valid', async () => {
        const bad = { ...mode, apiKey: `${mode.apiKey}-not-a-key` };
        await withClient(bad, async ({ auth }) => {
          await expectAuthError(
            createUserWithEmailAndPassword(auth, uniqueEmail('badkey'), PASSWORD),
            ['auth/api-key-not-valid.-please-pass-a-valid-api-key.'],
            'sign-up with a wrong API key',
          );
          await expectAuthError(
            signInAnonymously(auth),
            ['auth/api-key-not-valid.-please-pass-a-valid-api-key.'],
            'anonymous sign-in with a wrong API key',
          );
          assert.equal(auth.currentUser, null);
        });
      });
    }
  });
}
