// TOTP second factors with the real SDKs, in both server modes:
// - firebase-admin's projectConfigManager switches TOTP on (emulator mode; the default-mode
//   server gets the same settings over REST with its admin token);
// - the JS client enrolls an authenticator with TotpMultiFactorGenerator, the test computing
//   each code from the shared secret (RFC 6238, HMAC-SHA1, 6 digits, 30 s);
// - a password sign-in then fails with auth/multi-factor-auth-required; the resolver
//   completes it with a fresh code; the ID token names the second factor;
// - wrong and reused codes are refused; firebase-admin sees the factor as `totp`;
// - unenrolling lets the password alone sign in again.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import {
  createUserWithEmailAndPassword,
  getMultiFactorResolver,
  multiFactor,
  signInWithEmailAndPassword,
  signOut,
  TotpMultiFactorGenerator,
} from 'firebase/auth';
import {
  adminFetch,
  adminTokenFor,
  clientAuth,
  decodeJwt,
  emulatorAdmin,
  expectAuthError,
  MODES,
  PROJECT,
  uniqueEmail,
} from './helpers.mjs';

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

function base32Decode(text) {
  let bits = 0;
  let value = 0;
  const out = [];
  for (const ch of text.replace(/=+$/, '').toUpperCase()) {
    const idx = BASE32.indexOf(ch);
    if (idx < 0) throw new Error(`not base32: ${ch}`);
    value = (value << 5) | idx;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

// The code of the 30-second step `offset` steps from now.
function totpCode(secretBase32, offset = 0) {
  const step = Math.floor(Date.now() / 1000 / 30) + offset;
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac('sha1', base32Decode(secretBase32)).update(counter).digest();
  const at = mac[mac.length - 1] & 0x0f;
  const n = (mac.readUInt32BE(at) & 0x7fffffff) % 1_000_000;
  return String(n).padStart(6, '0');
}

const MFA_SETTINGS = {
  state: 'ENABLED',
  enabledProviders: ['PHONE_SMS'],
  providerConfigs: [{ state: 'ENABLED', totpProviderConfig: { adjacentIntervals: 2 } }],
};

for (const mode of MODES) {
  describe(`TOTP second factor with the JS client (${mode.name} mode)`, { skip: mode.skip }, () => {
    let adminApp;

    before(async () => {
      if (mode.name === 'emulator') {
        adminApp = await emulatorAdmin(mode.url, `fk-mfa-${mode.name}`);
        const config = await adminApp.auth.projectConfigManager().updateProjectConfig({
          multiFactorConfig: {
            state: 'ENABLED',
            factorIds: ['phone'],
            providerConfigs: [{ state: 'ENABLED', totpProviderConfig: { adjacentIntervals: 2 } }],
          },
        });
        assert.equal(config.multiFactorConfig.state, 'ENABLED');
        assert.equal(config.multiFactorConfig.providerConfigs[0].totpProviderConfig.adjacentIntervals, 2);
      } else {
        const r = await adminFetch(
          mode.url,
          `/identitytoolkit.googleapis.com/v2/projects/${PROJECT}/config?updateMask=mfa`,
          adminTokenFor(mode),
          { method: 'PATCH', body: { mfa: MFA_SETTINGS } },
        );
        assert.equal(r.status, 200, JSON.stringify(r.body));
      }
    });

    after(() => adminApp?.close());

    it('enrolls an authenticator and signs in with its codes', async () => {
      const ctx = clientAuth(mode.url, mode.apiKey);
      try {
        const email = uniqueEmail('totp');
        const password = 'totp-Password-1';
        const cred = await createUserWithEmailAndPassword(ctx.auth, email, password);
        const uid = cred.user.uid;
        // Second factors need a verified email: an admin verifies it here.
        const verified = await adminFetch(
          mode.url,
          `/identitytoolkit.googleapis.com/v1/projects/${PROJECT}/accounts:update`,
          adminTokenFor(mode),
          { method: 'POST', body: { localId: uid, emailVerified: true } },
        );
        assert.equal(verified.status, 200);
        await cred.user.reload();

        const session = await multiFactor(cred.user).getSession();
        const secret = await TotpMultiFactorGenerator.generateSecret(session);
        assert.equal(secret.codeLength, 6);
        assert.equal(secret.codeIntervalSeconds, 30);
        assert.equal(secret.hashingAlgorithm, 'SHA1');
        assert.match(secret.generateQrCodeUrl(email, 'Firekeeper'), /^otpauth:\/\/totp\//);
        const wrong = TotpMultiFactorGenerator.assertionForEnrollment(
          secret,
          totpCode(secret.secretKey, 10),
        );
        await expectAuthError(
          multiFactor(cred.user).enroll(wrong, 'authenticator'),
          ['auth/invalid-verification-code'],
          'enrolling with a wrong code',
        );
        const right = TotpMultiFactorGenerator.assertionForEnrollment(secret, totpCode(secret.secretKey));
        await multiFactor(cred.user).enroll(right, 'authenticator');
        const factors = multiFactor(cred.user).enrolledFactors;
        assert.equal(factors.length, 1);
        assert.equal(factors[0].factorId, 'totp');
        assert.equal(factors[0].displayName, 'authenticator');
        const enrolledToken = await cred.user.getIdTokenResult();
        assert.equal(enrolledToken.signInSecondFactor, 'totp');

        await signOut(ctx.auth);
        const err = await expectAuthError(
          signInWithEmailAndPassword(ctx.auth, email, password),
          ['auth/multi-factor-auth-required'],
          'a password alone',
        );
        const resolver = getMultiFactorResolver(ctx.auth, err);
        assert.equal(resolver.hints.length, 1);
        assert.equal(resolver.hints[0].factorId, 'totp');
        const hint = resolver.hints[0].uid;
        await expectAuthError(
          resolver.resolveSignIn(
            TotpMultiFactorGenerator.assertionForSignIn(hint, totpCode(secret.secretKey, 10)),
          ),
          ['auth/invalid-verification-code'],
          'a wrong second-factor code',
        );
        // The enrollment used this period's code: the next period's is the fresh one.
        const fresh = totpCode(secret.secretKey, 1);
        const signedIn = await resolver.resolveSignIn(
          TotpMultiFactorGenerator.assertionForSignIn(hint, fresh),
        );
        assert.equal(signedIn.user.uid, uid);
        const result = await signedIn.user.getIdTokenResult();
        assert.equal(result.signInSecondFactor, 'totp');
        assert.equal(result.signInProvider, 'password');
        assert.equal(decodeJwt(result.token).payload.firebase.second_factor_identifier, hint);

        // The same code again, with a new pending credential: refused.
        await signOut(ctx.auth);
        const again = await expectAuthError(
          signInWithEmailAndPassword(ctx.auth, email, password),
          ['auth/multi-factor-auth-required'],
          'a password alone, again',
        );
        await expectAuthError(
          getMultiFactorResolver(ctx.auth, again).resolveSignIn(
            TotpMultiFactorGenerator.assertionForSignIn(hint, fresh),
          ),
          ['auth/invalid-verification-code'],
          'a reused code',
        );
        const signedInAgain = await getMultiFactorResolver(ctx.auth, again).resolveSignIn(
          TotpMultiFactorGenerator.assertionForSignIn(hint, totpCode(secret.secretKey, 2)),
        );

        if (adminApp) {
          const record = await adminApp.auth.getUser(uid);
          assert.equal(record.multiFactor.enrolledFactors.length, 1);
          assert.equal(record.multiFactor.enrolledFactors[0].factorId, 'totp');
          assert.equal(record.multiFactor.enrolledFactors[0].uid, hint);
        }

        await multiFactor(signedInAgain.user).unenroll(hint);
        assert.equal(multiFactor(signedInAgain.user).enrolledFactors.length, 0);
        await signOut(ctx.auth);
        const plain = await signInWithEmailAndPassword(ctx.auth, email, password);
        assert.equal(plain.user.uid, uid);
        assert.equal((await plain.user.getIdTokenResult()).signInSecondFactor, null);
      } finally {
        await ctx.close();
      }
    });
  });
}
