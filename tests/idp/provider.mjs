// scopegate's loopback OpenID provider: a TEST FIXTURE for the interoperability suite,
// never a product. It wraps oidc-provider (a certified OpenID Provider) and adds a few
// unauthenticated admin endpoints; bind it to 127.0.0.1 only. See README.md.
//
// Environment:
//   PORT           issuer port (default 4455); the issuer is http://127.0.0.1:$PORT
//   ATTACKER_PORT  port of a second listener serving an untrusted JWKS
//                  (default PORT+1; 0 turns it off)
//   KEYS_DIR       where the private keys are kept (default ./keys)
//   PID_FILE       if set, the process id is written there once both listeners are up
//   EXIT_WITH_STDIN=1  exit when stdin closes (a test harness that dies takes us along)
//   IDP_DISABLE    comma-separated optional features to turn off:
//                  introspection, revocation, dpop, userinfo

import { createHash, generateKeyPair } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import Provider, { errors } from 'oidc-provider';

// ------------------------------------------------------------------------- settings

const LOOPBACK = '127.0.0.1';
const port = Number(process.env.PORT ?? 4455);
const attackerPort = process.env.ATTACKER_PORT === undefined ? port + 1 : Number(process.env.ATTACKER_PORT);
const issuer = `http://${LOOPBACK}:${port}`;
const keysDir = resolve(process.env.KEYS_DIR ?? join(dirname(fileURLToPath(import.meta.url)), 'keys'));
const disabled = new Set((process.env.IDP_DISABLE ?? '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean));
const enabled = (feature) => !disabled.has(feature);

const APPOINTMENT_SCOPES = 'read:appointments write:appointments';

// The APIs (RFC 8707 resource indicators) this provider issues access tokens for. `jwt`
// gives RFC 9068 access tokens (`typ: at+jwt`, RS256); `opaque` gives reference tokens
// that only introspection can read.
const RESOURCES = {
  'https://api.example.test': { scope: APPOINTMENT_SCOPES, format: 'jwt' },
  'https://other-api.example.test': { scope: APPOINTMENT_SCOPES, format: 'jwt' },
  'https://opaque-api.example.test': { scope: APPOINTMENT_SCOPES, format: 'opaque' },
};

const CLIENTS = [
  // Machine to machine: client credentials with HTTP Basic.
  {
    client_id: 'm2m-client',
    client_secret: 'm2m-secret',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: APPOINTMENT_SCOPES,
  },
  // A web application: authorization code, approved without a UI, redirected to /cb.
  {
    client_id: 'web-client',
    client_secret: 'web-secret',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: [`${issuer}/cb`],
    token_endpoint_auth_method: 'client_secret_basic',
  },
  // A resource server: obtains no tokens, only asks about them (RFC 7662).
  {
    client_id: 'api-introspector',
    client_secret: 'api-introspector-secret',
    grant_types: [],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
  },
];
const INTROSPECTORS = new Set(['api-introspector']);

// The one end user, logged in automatically by the interaction step.
const USER = { sub: 'test-user', email: 'test-user@example.test', email_verified: true, name: 'Test User' };

const say = (...parts) => console.error(`[test-idp :${port}]`, ...parts);

// ------------------------------------------------------------------------- keys

const b64url = (buffer) => Buffer.from(buffer).toString('base64url');

/**
 * A new RS256 signing key as a private JWK; its kid carries the RFC 7638 thumbprint.
 * Generated off the main thread, so that several are made at once.
 */
async function rsaSigningKey(label) {
  const { privateKey } = await promisify(generateKeyPair)('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  const thumbprint = b64url(createHash('sha256').update(JSON.stringify({ e: jwk.e, kty: jwk.kty, n: jwk.n })).digest());
  return { ...jwk, kid: `${label}-${thumbprint.slice(0, 16)}`, alg: 'RS256', use: 'sig' };
}

const publicPart = ({ kty, kid, alg, use, n, e }) => ({ kty, kid, alg, use, n, e });

/** Written through a temporary file, so a reader never sees half a key file. */
function saveJson(file, value) {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const partial = `${file}.${process.pid}.partial`;
  writeFileSync(partial, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
  renameSync(partial, file);
}

function loadJson(file) {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  }
}

const signingKeysFile = join(keysDir, 'provider-keys.json');
const attackerKeyFile = join(keysDir, 'attacker-key.json');

async function created(file, make) {
  const value = await make();
  saveJson(file, value);
  return value;
}

// keys[0] signs; every key in the list is published. Keys left in KEYS_DIR are reused.
const storedKeys = loadJson(signingKeysFile)?.keys;
let [signingKeys, attackerKey] = await Promise.all([
  Array.isArray(storedKeys) && storedKeys.length > 0
    ? storedKeys
    : created(signingKeysFile, async () => ({ keys: await Promise.all([rsaSigningKey('idp'), rsaSigningKey('idp')]) }))
      .then(({ keys }) => keys),
  loadJson(attackerKeyFile) ?? created(attackerKeyFile, () => rsaSigningKey('attacker')),
]);

// The ways /__admin/rotate changes the key list.
const ROTATIONS = {
  // A new signer; the previous signer stays published for its tokens (grace period).
  new: async (keys) => [await rsaSigningKey('idp'), keys[0]],
  // The second published key becomes the signer; the previous signer stays published.
  swap: (keys) => (keys.length > 1 ? [keys[1], keys[0], ...keys.slice(2)] : keys),
  // A new signer alone: tokens of every previous key must stop verifying.
  'new-drop-old': async () => [await rsaSigningKey('idp')],
};

// ------------------------------------------------------------------------- storage

// oidc-provider takes its keys at construction, so a rotation builds a new instance. Its
// own in-memory adapter is per instance; this one is per process, so sessions, grants,
// codes and opaque tokens survive a rotation. Entries expire; nothing is ever written out.
const store = new Map();
const grantMembers = new Map();
const alive = (entry) => entry && (entry.expiresAt === undefined || entry.expiresAt > Date.now());

class ProcessStore {
  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : undefined;
    store.set(this.key(id), { payload, expiresAt });
    if (this.model === 'Session' && payload.uid) store.set(`sessionUid:${payload.uid}`, { payload: id, expiresAt });
    if (payload.userCode) store.set(`userCode:${payload.userCode}`, { payload: id, expiresAt });
    if (payload.grantId) {
      if (!grantMembers.has(payload.grantId)) grantMembers.set(payload.grantId, new Set());
      grantMembers.get(payload.grantId).add(this.key(id));
    }
  }

  async find(id) {
    const entry = store.get(this.key(id));
    if (alive(entry)) return entry.payload;
    store.delete(this.key(id));
    return undefined;
  }

  async findByUid(uid) {
    const entry = store.get(`sessionUid:${uid}`);
    return alive(entry) ? this.find(entry.payload) : undefined;
  }

  async findByUserCode(userCode) {
    const entry = store.get(`userCode:${userCode}`);
    return alive(entry) ? this.find(entry.payload) : undefined;
  }

  async consume(id) {
    const entry = store.get(this.key(id));
    if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    store.delete(this.key(id));
  }

  async revokeByGrantId(grantId) {
    for (const key of grantMembers.get(grantId) ?? []) store.delete(key);
    grantMembers.delete(grantId);
  }
}

// ------------------------------------------------------------------------- provider

function configuration(keys) {
  return {
    adapter: ProcessStore,
    clients: CLIENTS,
    jwks: { keys },
    cookies: { keys: ['loopback-fixture-cookie-key'] },
    scopes: ['openid', 'offline_access', 'email', 'profile', ...APPOINTMENT_SCOPES.split(' ')],
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    async findAccount(_ctx, id) {
      if (id !== USER.sub) return undefined;
      return { accountId: id, claims: async () => ({ ...USER }) };
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      userinfo: { enabled: enabled('userinfo') },
      introspection: {
        enabled: enabled('introspection'),
        // A resource server may ask about any token; other clients about their own.
        allowedPolicy: async (_ctx, client, token) => INTROSPECTORS.has(client.clientId) || token.clientId === client.clientId,
      },
      revocation: {
        enabled: enabled('revocation'),
        allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId,
      },
      dPoP: { enabled: enabled('dpop') },
      resourceIndicators: {
        enabled: true,
        // No `resource` parameter: no audience, an opaque token good for /userinfo only.
        defaultResource: () => undefined,
        useGrantedResource: () => true,
        async getResourceServerInfo(_ctx, indicator) {
          const resource = RESOURCES[indicator];
          if (!resource) throw new errors.InvalidTarget(`this provider knows no resource ${indicator}`);
          const info = { scope: resource.scope, audience: indicator, accessTokenTTL: 3600 };
          if (resource.format === 'jwt') return { ...info, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } };
          return { ...info, accessTokenFormat: 'opaque' };
        },
      },
    },
    ttl: {
      AccessToken: 3600,
      ClientCredentials: 3600,
      AuthorizationCode: 60,
      IdToken: 3600,
      Grant: 3600,
      Interaction: 600,
      Session: 3600,
      RefreshToken: 86400,
    },
    // Errors as JSON: the tests read them, nobody looks at an HTML page here.
    renderError(ctx, out) {
      ctx.type = 'json';
      ctx.body = out;
    },
  };
}

// The current instance; /__admin/rotate replaces it.
let provider;
let handle;
function startProvider(keys) {
  provider = new Provider(issuer, configuration(keys));
  provider.on('server_error', (_ctx, error) => say('server_error', error));
  provider.on('grant.error', (_ctx, error) => say('grant.error', error.message, error.error_description ?? ''));
  handle = provider.callback();
}
startProvider(signingKeys);

// ------------------------------------------------------------------------- http

function reply(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(`${JSON.stringify(body)}\n`);
}

// The login and consent step, with no page: USER is logged in and every scope, claim and
// resource asked for is granted.
async function approve(req, res) {
  const details = await provider.interactionDetails(req, res);
  const accountId = details.session?.accountId ?? USER.sub;
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId, clientId: details.params.client_id });
  const missing = details.prompt.details;
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { login: { accountId }, consent: { grantId } }, { mergeWithLastSubmission: false });
}

// What the tests count: how often the keys and the metadata were fetched, by anyone.
const stats = { jwks_fetches: 0, discovery_fetches: 0, attacker_fetches: 0, introspections: 0 };

const admin = {
  'GET /__admin/stats': () => [200, stats],
  'GET /__admin/keys': () => [200, {
    active_kid: signingKeys[0].kid,
    published_kids: signingKeys.map((key) => key.kid),
    attacker_kid: attackerKey.kid,
    keys_file: signingKeysFile,
  }],
  'POST /__admin/rotate': async (url) => {
    const mode = url.searchParams.get('mode') ?? 'new';
    const rotate = ROTATIONS[mode];
    if (!rotate) return [400, { error: `mode must be one of ${Object.keys(ROTATIONS).join(', ')}` }];
    const previous = signingKeys.map((key) => key.kid);
    signingKeys = await rotate(signingKeys);
    saveJson(signingKeysFile, { keys: signingKeys });
    startProvider(signingKeys);
    const published = signingKeys.map((key) => key.kid);
    say(`rotated (${mode}): ${previous.join(', ')} -> ${published.join(', ')}`);
    return [200, { mode, previous_kids: previous, active_kid: published[0], published_kids: published }];
  },
};

async function route(req, res) {
  const url = new URL(req.url, issuer);
  const path = url.pathname;
  if (path === '/healthz') return reply(res, 200, { ok: true, issuer });
  if (path.startsWith('/__admin/')) {
    const action = admin[`${req.method} ${path}`];
    if (!action) return reply(res, 404, { error: 'not_found' });
    return reply(res, ...(await action(url)));
  }
  if (path.startsWith('/interaction/')) return approve(req, res);
  // The web client's redirect_uri: the authorization response, as JSON.
  if (path === '/cb') return reply(res, 200, Object.fromEntries(url.searchParams));
  if (path === '/jwks') stats.jwks_fetches += 1;
  if (path === '/token/introspection') stats.introspections += 1;
  if (path.startsWith('/.well-known/')) stats.discovery_fetches += 1;
  // RFC 8414 metadata: the same document as OpenID discovery.
  if (path === '/.well-known/oauth-authorization-server') req.url = '/.well-known/openid-configuration';
  return handle(req, res);
}

const server = createServer((req, res) => {
  route(req, res).catch((error) => {
    say('request failed', error);
    if (res.headersSent) res.end();
    else reply(res, 500, { error: 'server_error', error_description: String(error?.message ?? error) });
  });
});

// A key the provider never trusts, published elsewhere: a verifier that follows `jku` or
// `x5u` from a token header would fetch it (and the counter would show it).
const attacker = attackerPort
  ? createServer((req, res) => {
    const { pathname } = new URL(req.url, `http://${LOOPBACK}:${attackerPort}`);
    if (pathname !== '/jwks.json' && pathname !== '/.well-known/jwks.json') return reply(res, 404, { error: 'not_found' });
    stats.attacker_fetches += 1;
    say(`attacker JWKS fetched by ${req.socket.remoteAddress}`);
    return reply(res, 200, { keys: [publicPart(attackerKey)] });
  })
  : undefined;

const listen = (listener, listenPort) => new Promise((done, fail) => {
  listener.once('error', fail);
  listener.listen(listenPort, LOOPBACK, done);
});

try {
  await listen(server, port);
  if (attacker) await listen(attacker, attackerPort);
} catch (error) {
  say(`cannot listen: ${error.code ?? error.message}`);
  process.exit(1);
}
say(`issuer ${issuer}, pid ${process.pid}, signing kid ${signingKeys[0].kid}`);
if (attacker) say(`attacker JWKS http://${LOOPBACK}:${attackerPort}/jwks.json`);
if (process.env.PID_FILE) writeFileSync(process.env.PID_FILE, `${process.pid}\n`);

function stop(signal) {
  say(`${signal}: stopping`);
  for (const listener of [server, attacker]) {
    listener?.close();
    listener?.closeAllConnections();
  }
  setTimeout(() => process.exit(0), 100).unref();
}
process.on('SIGINT', () => stop('SIGINT'));
process.on('SIGTERM', () => stop('SIGTERM'));
if (process.env.EXIT_WITH_STDIN === '1') {
  process.stdin.on('data', () => {});
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
}
