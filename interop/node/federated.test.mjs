// Federated sign-in and provider configurations with the real SDKs:
// - default mode: an OpenID Connect provider started here (jose keys, discovery, JWKS) is
//   configured through the v2 oauthIdpConfigs API; the JS client signs in with
//   `signInWithCredential(OAuthProvider('oidc.…').credential({idToken, rawNonce}))`; a forged
//   token and a wrong nonce are refused;
// - default mode: GitHub and Twitter configured through defaultSupportedIdpConfigs with a
//   stand-in for their APIs (GitHub's token check with the app's credentials, Twitter's
//   OAuth 1.0a header); the JS client signs in with `GithubAuthProvider.credential(token)`
//   and `TwitterAuthProvider.credential(token, secret)`; another app's token is refused;
// - emulator mode: firebase-admin creates, reads, updates, lists and deletes OIDC and SAML
//   provider configurations.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import {
  getAdditionalUserInfo,
  GithubAuthProvider,
  OAuthProvider,
  signInWithCredential,
  TwitterAuthProvider,
} from 'firebase/auth';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { clientAuth, emulatorAdmin, expectAuthError, MODES, PROJECT, uniqueEmail } from './helpers.mjs';

const prod = MODES.find((m) => m.name === 'default');
const emu = MODES.find((m) => m.name === 'emulator');
const adminToken = process.env.FK_PROD_ADMIN_TOKEN;
const CLIENT_ID = 'interop-client';

// An OpenID provider: discovery and keys over HTTP, tokens signed here.
async function startProvider() {
  const { publicKey, privateKey } = await generateKeyPair('RS256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'interop-key', alg: 'RS256', use: 'sig' };
  const server = http.createServer((req, res) => {
    const send = (body) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.url === '/.well-known/openid-configuration') {
      send({ issuer: provider.issuer, jwks_uri: `${provider.issuer}/jwks`, response_types_supported: ['id_token'] });
    } else if (req.url === '/jwks') {
      send({ keys: [jwk] });
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const provider = {
    issuer: `http://127.0.0.1:${server.address().port}`,
    server,
    async idToken(claims, key = privateKey) {
      return new SignJWT(claims)
        .setProtectedHeader({ alg: 'RS256', kid: 'interop-key' })
        .setIssuer(provider.issuer)
        .setAudience(CLIENT_ID)
        .setIssuedAt()
        .setExpirationTime('10m')
        .sign(key);
    },
  };
  return provider;
}

describe('an OpenID Connect provider through the JS client (default mode)', {
  skip: prod.skip || (!adminToken && 'FK_PROD_ADMIN_TOKEN is not set (run interop/run.sh)'),
}, () => {
  let provider;
  const providerId = `oidc.interop-${randomBytes(3).toString('hex')}`;

  before(async () => {
    provider = await startProvider();
    const res = await fetch(
      `${prod.url}/identitytoolkit.googleapis.com/v2/projects/${PROJECT}/oauthIdpConfigs?oauthIdpConfigId=${providerId}`,
      {
        method: 'POST',
        headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          displayName: 'Interop IdP',
          enabled: true,
          clientId: CLIENT_ID,
          issuer: provider.issuer,
          responseType: { idToken: true },
        }),
      },
    );
    assert.equal(res.status, 200, await res.text());
  });

  after(() => provider?.server.close());

  it('signs in with an id_token and a nonce; refuses forged tokens and other nonces', async () => {
    const ctx = clientAuth(prod.url, prod.apiKey);
    try {
      const email = uniqueEmail('oidc');
      const sub = `sub-${randomBytes(4).toString('hex')}`;
      const rawNonce = randomBytes(12).toString('hex');
      const hashed = createHash('sha256').update(rawNonce).digest('hex');
      const idToken = await provider.idToken({ sub, email, email_verified: true, name: 'Olive', nonce: hashed });
      const oidc = new OAuthProvider(providerId);
      const cred = await signInWithCredential(ctx.auth, oidc.credential({ idToken, rawNonce }));
      assert.equal(cred.user.email, email);
      assert.equal(cred.user.displayName, 'Olive');
      assert.equal(cred.user.emailVerified, true);
      assert.deepEqual(cred.user.providerData.map((p) => [p.providerId, p.uid]), [[providerId, sub]]);
      const info = getAdditionalUserInfo(cred);
      assert.equal(info.isNewUser, true);
      assert.equal(info.providerId, providerId);
      const claims = (await cred.user.getIdTokenResult()).claims;
      assert.equal(claims.firebase.sign_in_provider, providerId);

      // The same identity again: the same user, not new.
      const again = await signInWithCredential(
        ctx.auth,
        oidc.credential({ idToken: await provider.idToken({ sub }), rawNonce: undefined }),
      );
      assert.equal(again.user.uid, cred.user.uid);
      assert.equal(getAdditionalUserInfo(again).isNewUser, false);

      const { privateKey: forger } = await generateKeyPair('RS256');
      const forged = await provider.idToken({ sub }, forger);
      await expectAuthError(
        signInWithCredential(ctx.auth, oidc.credential({ idToken: forged })),
        ['auth/invalid-credential'],
        'a token signed with another key',
      );
      await expectAuthError(
        signInWithCredential(ctx.auth, oidc.credential({ idToken, rawNonce: 'another-nonce' })),
        ['auth/invalid-credential'],
        'a token with another nonce',
      );
    } finally {
      await ctx.close();
    }
  });
});

// Stand-ins for GitHub's and Twitter's APIs. Both answer any token's profile, as the real
// APIs do; only GitHub's token check (with the app's id and secret) and Twitter's signed
// header tell this app's tokens from others'.
async function startApis(goodToken, clientId, clientSecret, login) {
  const basic = `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}`;
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      const send = (status, value) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(value));
      };
      const auth = req.headers.authorization || '';
      if (req.method === 'POST' && req.url === `/applications/${clientId}/token`) {
        const ok = auth === basic && JSON.parse(body || '{}').access_token === goodToken;
        return ok ? send(200, { user: { id: 777, login } }) : send(404, { message: 'Not Found' });
      }
      if (req.url === '/user') return send(200, { id: 777, login, name: 'Octo Cat', avatar_url: null });
      if (req.url === '/user/emails') {
        return send(200, [{ email: `${login}@example.com`, primary: true, verified: true }]);
      }
      if (req.url.startsWith('/1.1/account/verify_credentials.json')) {
        const ok = auth.startsWith('OAuth ') && auth.includes(`oauth_token="${goodToken}"`)
          && auth.includes(`oauth_consumer_key="${clientId}"`) && auth.includes('oauth_signature="');
        return ok
          ? send(200, { id_str: `tw-${login}`, name: 'Tweety', screen_name: login })
          : send(401, { errors: [{ code: 89 }] });
      }
      return send(404, {});
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${server.address().port}` };
}

describe('named providers through the JS client (default mode)', {
  skip: prod.skip || (!adminToken && 'FK_PROD_ADMIN_TOKEN is not set (run interop/run.sh)'),
}, () => {
  const good = `gho_${randomBytes(8).toString('hex')}`;
  const login = `octo${randomBytes(3).toString('hex')}`;
  let apis;

  before(async () => {
    apis = await startApis(good, CLIENT_ID, 'interop-secret', login);
    for (const idpId of ['github.com', 'twitter.com']) {
      const res = await fetch(
        `${prod.url}/identitytoolkit.googleapis.com/v2/projects/${PROJECT}/defaultSupportedIdpConfigs?idpId=${idpId}`,
        {
          method: 'POST',
          headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
          body: JSON.stringify({
            enabled: true,
            clientId: CLIENT_ID,
            clientSecret: 'interop-secret',
            endpoints: { apiUri: apis.url },
          }),
        },
      );
      assert.equal(res.status, 200, await res.text());
    }
  });

  after(() => apis?.server.close());

  it('signs in with GitHub and Twitter tokens issued to this app only', async () => {
    const ctx = clientAuth(prod.url, prod.apiKey);
    try {
      const cred = await signInWithCredential(ctx.auth, GithubAuthProvider.credential(good));
      assert.equal(cred.user.email, `${login}@example.com`);
      assert.equal(cred.user.emailVerified, false, 'GitHub is not trusted with addresses');
      assert.deepEqual(cred.user.providerData.map((p) => [p.providerId, p.uid]), [['github.com', '777']]);
      assert.equal((await cred.user.getIdTokenResult()).signInProvider, 'github.com');
      await expectAuthError(
        signInWithCredential(ctx.auth, GithubAuthProvider.credential('gho_of_another_app')),
        ['auth/invalid-credential'],
        "another app's GitHub token",
      );
      const tw = await signInWithCredential(ctx.auth, TwitterAuthProvider.credential(good, 'tw-secret'));
      assert.equal(tw.user.providerData[0].providerId, 'twitter.com');
      assert.equal(tw.user.displayName, 'Tweety');
      await expectAuthError(
        signInWithCredential(ctx.auth, TwitterAuthProvider.credential('another', 'tw-secret')),
        ['auth/invalid-credential'],
        "another app's Twitter token",
      );
    } finally {
      await ctx.close();
    }
  });
});

describe('provider configurations through firebase-admin (emulator mode)', { skip: emu.skip }, () => {
  let adminApp;
  let admin;

  before(async () => {
    adminApp = await emulatorAdmin(emu.url, 'fk-providers');
    admin = adminApp.auth;
  });

  after(() => adminApp?.close());

  it('creates, reads, updates, lists and deletes OIDC and SAML configurations', async () => {
    const tag = randomBytes(3).toString('hex');
    const oidcId = `oidc.admin-${tag}`;
    const samlId = `saml.admin-${tag}`;
    const created = await admin.createProviderConfig({
      providerId: oidcId,
      displayName: 'Admin OIDC',
      enabled: true,
      clientId: 'admin-client',
      issuer: 'https://issuer.example.com',
    });
    assert.equal(created.providerId, oidcId);
    assert.equal(created.clientId, 'admin-client');
    const saml = await admin.createProviderConfig({
      providerId: samlId,
      displayName: 'Admin SAML',
      enabled: true,
      idpEntityId: 'corp-idp',
      ssoURL: 'https://corp.example.com/sso',
      // A real certificate: the server reads its key when the configuration is saved.
      x509Certificates: [readFileSync(new URL('../../crates/server/tests/api/saml/idp-cert.pem', import.meta.url), 'utf8')],
      rpEntityId: 'firekeeper-sp',
      callbackURL: 'https://fk.example.com/__/auth/handler',
    });
    assert.equal(saml.idpEntityId, 'corp-idp');
    assert.equal(saml.callbackURL, 'https://fk.example.com/__/auth/handler');

    const updated = await admin.updateProviderConfig(oidcId, { displayName: 'Renamed', enabled: false });
    assert.equal(updated.displayName, 'Renamed');
    assert.equal(updated.enabled, false);
    assert.equal(updated.issuer, 'https://issuer.example.com');
    const samlUpdated = await admin.updateProviderConfig(samlId, { ssoURL: 'https://corp.example.com/sso2' });
    assert.equal(samlUpdated.ssoURL, 'https://corp.example.com/sso2');
    assert.equal(samlUpdated.idpEntityId, 'corp-idp');

    assert.equal((await admin.getProviderConfig(oidcId)).displayName, 'Renamed');
    const listed = await admin.listProviderConfigs({ type: 'oidc' });
    assert.ok(listed.providerConfigs.some((c) => c.providerId === oidcId));
    const samlListed = await admin.listProviderConfigs({ type: 'saml' });
    assert.ok(samlListed.providerConfigs.some((c) => c.providerId === samlId));

    await assert.rejects(
      admin.createProviderConfig({ providerId: oidcId, clientId: 'x', issuer: 'https://i.example.com' }),
      (err) => err.code === 'auth/configuration-exists',
    );
    await admin.deleteProviderConfig(oidcId);
    await admin.deleteProviderConfig(samlId);
    await assert.rejects(admin.getProviderConfig(oidcId), (err) => err.code === 'auth/configuration-not-found');
  });
});
