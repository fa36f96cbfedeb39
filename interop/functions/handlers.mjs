// Blocking functions written with the real firebase-functions package (v1 and v2 APIs),
// mostly the "common scenarios" of Firebase's blocking-functions pages, served over HTTP on
// loopback with one path per handler. Every HTTP call (raw JWT, response) and every handler
// invocation (the event as firebase-functions decoded it) is recorded.
//
// firebase-functions decides per call how to check the JWT: with FIREBASE_AUTH_EMULATOR_HOST
// set it accepts only unsigned tokens (mode B), without it it verifies RS256 signatures
// (mode C) with the default Admin app's `authBlockingTokenVerifier`. GCLOUD_PROJECT must be
// set before the first call.
import { setTimeout as sleep } from 'node:timers/promises';
import express from 'express';
import * as functions from 'firebase-functions/v1';
import {
  beforeEmailSent,
  beforeUserCreated,
  beforeUserSignedIn,
  HttpsError,
} from 'firebase-functions/v2/identity';

// Test knobs: the IP addresses the IP-block scenarios deny, and the slow handler's delay.
export const blockedIps = new Set();
export const SLOW_HANDLER_MS = 10_000;
export const PLACEHOLDER_GUEST_PHOTO_URL = 'https://example.com/guest.png';

const isSuspiciousIpAddress = (ip) => blockedIps.has(ip);
const isPhotoAppropriate = async (url) => !url.includes('inappropriate');

// Handler invocations: {path, api, eventType, ipAddress, userAgent, locale, eventId,
// authType, resource, isNewUser, providerId, user: {uid, email, emailVerified, displayName,
// photoURL, disabled, customClaims, providerIds, creationTime, lastSignInTime}}.
export const calls = [];
// HTTP requests: {path, method, contentType, authorization, jwtHeader, jwtPayload, status,
// responseBody}.
export const requests = [];

function record(path, api, user, ctx) {
  calls.push({
    path,
    api,
    eventType: ctx.eventType,
    ipAddress: ctx.ipAddress,
    userAgent: ctx.userAgent,
    locale: ctx.locale,
    eventId: ctx.eventId,
    authType: ctx.authType,
    resource: ctx.resource,
    timestamp: ctx.timestamp,
    isNewUser: ctx.additionalUserInfo?.isNewUser,
    providerId: ctx.additionalUserInfo?.providerId,
    emailType: ctx.emailType,
    recipient: ctx.additionalUserInfo?.email,
    user: user && {
      uid: user.uid,
      email: user.email,
      emailVerified: user.emailVerified,
      displayName: user.displayName,
      photoURL: user.photoURL,
      disabled: user.disabled,
      customClaims: user.customClaims,
      providerIds: (user.providerData || []).map((p) => p.providerId),
      creationTime: user.metadata?.creationTime,
      lastSignInTime: user.metadata?.lastSignInTime,
    },
  });
}

// v1: functions.auth.user().beforeCreate / beforeSignIn, handler (user, context);
// beforeEmail, handler (context): an email has no user record.
function v1(path, event, fn) {
  const builder = functions.auth.user();
  if (event === 'beforeSendEmail') {
    return builder.beforeEmail((context) => {
      record(path, 'v1', undefined, context);
      return fn(context);
    });
  }
  const wrap = (user, context) => {
    record(path, 'v1', user, context);
    return fn(user, context);
  };
  return event === 'beforeCreate' ? builder.beforeCreate(wrap) : builder.beforeSignIn(wrap);
}

// v2: beforeUserCreated / beforeUserSignedIn, handler (event) with event.data = user.
function v2(path, event, fn) {
  const wrap = (ev) => {
    record(path, 'v2', ev.data, ev);
    return fn(ev);
  };
  if (event === 'beforeSendEmail') return beforeEmailSent(wrap);
  return event === 'beforeCreate' ? beforeUserCreated(wrap) : beforeUserSignedIn(wrap);
}

// path -> {event, fn}. Paths are relative to the handler server's root.
const HANDLERS = {};
function def(path, api, event, fn) {
  HANDLERS[path] = { event, api, fn: api === 'v1' ? v1(path, event, fn) : v2(path, event, fn) };
}

for (const api of ['v1', 'v2']) {
  const p = (name) => `/${api}/${name}`;
  // Records only.
  def(p('record-before-create'), api, 'beforeCreate', () => {});
  def(p('record-before-sign-in'), api, 'beforeSignIn', () => {});
  // Slower than the server's 7 s deadline.
  def(p('slow'), api, 'beforeCreate', async () => {
    await sleep(SLOW_HANDLER_MS);
  });
}

// Emails to one domain are never sent (firebase-functions puts the recipient in
// additionalUserInfo.email).
def('/v1/email-domain-block', 'v1', 'beforeSendEmail', (context) => {
  if (context.additionalUserInfo?.email?.endsWith('@blocked.test')) {
    throw new functions.auth.HttpsError('permission-denied', 'Emails to blocked.test are not sent');
  }
});
def('/v2/email-domain-block', 'v2', 'beforeSendEmail', (event) => {
  if (event.additionalUserInfo?.email?.endsWith('@blocked.test')) {
    throw new HttpsError('permission-denied', 'Emails to blocked.test are not sent');
  }
});

// --- v1 (firebase-functions/v1), the German page's code ---

// Allow sign-up only from a specific domain.
def('/v1/domain-allowlist', 'v1', 'beforeCreate', (user, context) => {
  if (!user.email || user.email.indexOf('@example.com') === -1) {
    throw new functions.auth.HttpsError('invalid-argument', `Unauthorized email "${user.email}"`);
  }
});

// Block users with unverified emails at sign-in.
def('/v1/require-verified-sign-in', 'v1', 'beforeSignIn', (user, context) => {
  if (user.email && !user.emailVerified) {
    throw new functions.auth.HttpsError(
      'invalid-argument', `"${user.email}" needs to be verified before access is granted.`);
  }
});

// Treat emails of some identity providers as verified.
def('/v1/facebook-verified', 'v1', 'beforeCreate', (user, context) => {
  if (user.email && !user.emailVerified && context.eventType.indexOf(':facebook.com') !== -1) {
    return {
      emailVerified: true,
    };
  }
});

// Block sign-in from some IP addresses.
def('/v1/ip-block', 'v1', 'beforeSignIn', (user, context) => {
  if (isSuspiciousIpAddress(context.ipAddress)) {
    throw new functions.auth.HttpsError('permission-denied', 'Unauthorized access!');
  }
});

// Custom and session claims. The page's version reads SAML claims (context.credential),
// which password flows do not have; the same answer without the SAML condition. It returns
// sessionClaims from beforeCreate, as the page's v1 sample does (only beforeSignIn's count).
def('/v1/claims-before-create', 'v1', 'beforeCreate', (user, context) => {
  return {
    customClaims: { eid: `E-${user.uid.slice(0, 6)}`, role: 'employee' },
    sessionClaims: { fromBeforeCreate: true },
  };
});
def('/v1/claims-before-sign-in', 'v1', 'beforeSignIn', (user, context) => {
  return {
    sessionClaims: { role: 'session-admin', groups: ['eng', 'ops'] },
  };
});

// Track the sign-in IP address, exactly as on the page.
def('/v1/sign-in-ip', 'v1', 'beforeSignIn', (user, context) => {
  return {
    sessionClaims: {
      signInIpAddress: context.ipAddress,
    },
  };
});

// Default display name (the page's sample has a stray `;` inside the object literal).
def('/v1/default-name', 'v1', 'beforeCreate', (user, context) => {
  return {
    // If no display name is provided, set it to "Guest".
    displayName: user.displayName || 'Guest',
  };
});

// Screen profile photos (the page does it in beforeCreate; password sign-up has no photo,
// so the same logic at sign-in). firebase-functions sends the key `photoURL`.
def('/v1/screen-photo', 'v1', 'beforeSignIn', (user, context) => {
  if (user.photoURL) {
    return isPhotoAppropriate(user.photoURL)
      .then((status) => {
        if (!status) {
          return {
            photoURL: PLACEHOLDER_GUEST_PHOTO_URL,
          };
        }
      });
  }
});

// --- v2 (firebase-functions/v2/identity), the Vietnamese page's code ---

def('/v2/domain-allowlist', 'v2', 'beforeCreate', (event) => {
  const user = event.data;
  if (!user?.email?.includes('@example.com')) {
    throw new HttpsError(
      'invalid-argument', 'Unauthorized email');
  }
});

// Block users with unverified emails from signing up.
def('/v2/require-verified-create', 'v2', 'beforeCreate', (event) => {
  const user = event.data;
  if (user.email && !user.emailVerified) {
    throw new HttpsError(
      'invalid-argument', 'Unverified email');
  }
});

def('/v2/facebook-verified', 'v2', 'beforeCreate', (event) => {
  const user = event.data;
  if (user.email && !user.emailVerified && event.eventType.includes(':facebook.com')) {
    return {
      emailVerified: true,
    };
  }
});

def('/v2/ip-block', 'v2', 'beforeSignIn', (event) => {
  if (isSuspiciousIpAddress(event.ipAddress)) {
    throw new HttpsError(
      'permission-denied', 'Unauthorized access!');
  }
});

// Custom claims at creation, session claims at sign-in (SAML condition dropped as above).
def('/v2/claims-before-create', 'v2', 'beforeCreate', (event) => {
  return {
    customClaims: {
      eid: `E-${event.data.uid.slice(0, 6)}`,
      role: 'employee',
    },
  };
});
def('/v2/claims-before-sign-in', 'v2', 'beforeSignIn', (event) => {
  return {
    sessionClaims: {
      role: 'session-admin',
      groups: ['eng', 'ops'],
    },
  };
});

def('/v2/sign-in-ip', 'v2', 'beforeSignIn', (event) => {
  return {
    sessionClaims: {
      signInIpAddress: event.ipAddress,
    },
  };
});

def('/v2/default-name', 'v2', 'beforeCreate', (event) => {
  return {
    // If no display name is provided, set it to "Guest".
    displayName: event.data.displayName || 'Guest'
  };
});

// The Vietnamese page answers with `photoUrl` (not photoURL).
def('/v2/screen-photo', 'v2', 'beforeSignIn', (event) => {
  const user = event.data;
  if (user.photoURL) {
    return isPhotoAppropriate(user.photoURL)
      .then((status) => {
        if (!status) {
          return {
            photoUrl: PLACEHOLDER_GUEST_PHOTO_URL,
          };
        }
      });
  }
});

export const HANDLER_PATHS = Object.keys(HANDLERS);
export function handlerEvent(path) {
  const h = HANDLERS[path];
  if (!h) throw new Error(`no handler ${path}`);
  return h.event;
}

function decodeSegment(s) {
  try {
    return JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
  } catch {
    return null;
  }
}

// Starts the handler server on 127.0.0.1 (free port). Returns {url, close}.
export async function startHandlerServer() {
  const app = express();
  app.use(express.json());
  for (const [path, { fn }] of Object.entries(HANDLERS)) {
    app.post(path, (req, res) => {
      const jwt = req.body?.data?.jwt;
      const [h, p] = typeof jwt === 'string' ? jwt.split('.') : [];
      const entry = {
        path,
        method: req.method,
        contentType: req.get('content-type'),
        authorization: req.get('authorization'),
        jwt,
        jwtHeader: h ? decodeSegment(h) : null,
        jwtPayload: p ? decodeSegment(p) : null,
        status: null,
        responseBody: null,
      };
      requests.push(entry);
      const send = res.send.bind(res);
      res.send = (body) => {
        entry.status = res.statusCode;
        entry.responseBody = typeof body === 'string' ? body : JSON.stringify(body);
        return send(body);
      };
      return fn(req, res);
    });
  }
  const server = await new Promise((resolve, reject) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
    s.on('error', reject);
  });
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

export function resetRecords() {
  calls.length = 0;
  requests.length = 0;
  blockedIps.clear();
}
