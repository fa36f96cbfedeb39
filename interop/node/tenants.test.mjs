// Tenants with the real SDKs:
// - emulator mode: firebase-admin's tenant manager creates, reads, updates, lists and deletes
//   tenants and creates a user inside one; the JS client signs in to that tenant
//   (`auth.tenantId`) and its ID token names the tenant; the project's users never see the
//   tenant's;
// - default mode: a tenant with a password policy; the JS client's `validatePassword` reads
//   it, and a sign-up with a weak password is refused
//   (`auth/password-does-not-meet-requirements`).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import {
  createUserWithEmailAndPassword,
  signInWithEmailAndPassword,
  validatePassword,
} from 'firebase/auth';
import { clientAuth, emulatorAdmin, expectAuthError, MODES, PROJECT, uniqueEmail } from './helpers.mjs';

const emu = MODES.find((m) => m.name === 'emulator');
const prod = MODES.find((m) => m.name === 'default');
const adminToken = process.env.FK_PROD_ADMIN_TOKEN;

describe('tenants through firebase-admin and the JS client (emulator mode)', { skip: emu.skip }, () => {
  let adminApp;
  let admin;

  before(async () => {
    adminApp = await emulatorAdmin(emu.url, 'fk-tenants');
    admin = adminApp.auth;
  });

  after(() => adminApp?.close());

  it('manages tenants and signs a tenant user in', async () => {
    const manager = admin.tenantManager();
    const name = `Interop-${randomBytes(3).toString('hex')}`;
    const tenant = await manager.createTenant({
      displayName: name,
      emailSignInConfig: { enabled: true, passwordRequired: true },
    });
    assert.ok(tenant.tenantId.startsWith(name.toLowerCase()), tenant.tenantId);
    assert.equal(tenant.displayName, name);
    assert.equal(tenant.emailSignInConfig.enabled, true);
    assert.equal(tenant.anonymousSignInEnabled, false);

    const updated = await manager.updateTenant(tenant.tenantId, { anonymousSignInEnabled: true });
    assert.equal(updated.anonymousSignInEnabled, true);
    assert.equal(updated.emailSignInConfig.enabled, true);
    assert.equal((await manager.getTenant(tenant.tenantId)).displayName, name);
    const listed = await manager.listTenants();
    assert.ok(listed.tenants.some((t) => t.tenantId === tenant.tenantId));

    const tenantAuth = manager.authForTenant(tenant.tenantId);
    const email = uniqueEmail('tenant-user');
    const user = await tenantAuth.createUser({ email, password: 'tenant-Password-1' });
    assert.equal(user.tenantId, tenant.tenantId);
    await assert.rejects(admin.getUserByEmail(email), (e) => e.code === 'auth/user-not-found');

    const ctx = clientAuth(emu.url, emu.apiKey);
    try {
      ctx.auth.tenantId = tenant.tenantId;
      const cred = await signInWithEmailAndPassword(ctx.auth, email, 'tenant-Password-1');
      assert.equal(cred.user.uid, user.uid);
      assert.equal(cred.user.tenantId, tenant.tenantId);
      const claims = (await cred.user.getIdTokenResult()).claims;
      assert.equal(claims.firebase.tenant, tenant.tenantId);
      const decoded = await tenantAuth.verifyIdToken(await cred.user.getIdToken());
      assert.equal(decoded.firebase.tenant, tenant.tenantId);
      // The same credentials do not open the project's own users.
      ctx.auth.tenantId = null;
      await expectAuthError(
        signInWithEmailAndPassword(ctx.auth, email, 'tenant-Password-1'),
        ['auth/user-not-found', 'auth/invalid-credential'],
        'a tenant user at the project level',
      );
    } finally {
      await ctx.close();
    }

    await manager.deleteTenant(tenant.tenantId);
    const after = await manager.listTenants();
    assert.ok(!after.tenants.some((t) => t.tenantId === tenant.tenantId));
  });
});

describe('a tenant password policy through the JS client (default mode)', {
  skip: prod.skip || (!adminToken && 'FK_PROD_ADMIN_TOKEN is not set (run interop/run.sh)'),
}, () => {
  it('validatePassword reads the policy and sign-up enforces it', async () => {
    const res = await fetch(`${prod.url}/identitytoolkit.googleapis.com/v2/projects/${PROJECT}/tenants`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        displayName: `Policy-${randomBytes(3).toString('hex')}`,
        allowPasswordSignup: true,
        passwordPolicyConfig: {
          passwordPolicyEnforcementState: 'ENFORCE',
          passwordPolicyVersions: [{
            customStrengthOptions: { minPasswordLength: 10, containsUppercaseCharacter: true, containsNumericCharacter: true },
          }],
        },
      }),
    });
    const tenant = await res.json();
    assert.equal(res.status, 200, JSON.stringify(tenant));
    const ctx = clientAuth(prod.url, prod.apiKey);
    try {
      ctx.auth.tenantId = tenant.tenantId;
      const weak = await validatePassword(ctx.auth, 'weakpass');
      assert.equal(weak.isValid, false);
      assert.equal(weak.meetsMinPasswordLength, false);
      assert.equal(weak.containsUppercaseLetter, false);
      assert.equal(weak.containsNumericCharacter, false);
      const strong = await validatePassword(ctx.auth, 'Strong-pass-42');
      assert.equal(strong.isValid, true);
      await expectAuthError(
        createUserWithEmailAndPassword(ctx.auth, uniqueEmail('weak'), 'weakpass'),
        ['auth/password-does-not-meet-requirements'],
        'a weak password',
      );
      const cred = await createUserWithEmailAndPassword(ctx.auth, uniqueEmail('strong'), 'Strong-pass-42');
      assert.equal(cred.user.tenantId, tenant.tenantId);
    } finally {
      await ctx.close();
    }
  });
});
