// Staff sign-in for the web app. Accounts hold a scrypt hash of the password; a session is a random
// token in an HttpOnly, SameSite=Strict cookie (Secure behind https) whose SHA-256 is all the database
// keeps. A cookie-authenticated unsafe request must carry the session's CSRF token in `x-csrf-token`
// AND come from our own origin (Origin / Sec-Fetch-Site): either check alone stops a cross-site form.
// Roles map onto the API's scopes (owner: admin, front_desk: write, practitioner: read); a practitioner
// is also held to their own schedule, server-side, by `guardRoute` and `redactFor` (default deny).
import { randomBytes, randomUUID, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { checkApiKey, type Scope } from '../engine/hub/apikeys.ts';
import type { Hub } from '../engine/hub/hub.ts';
import { alertStaff } from '../engine/effects/notify.ts';
import { appendAudit } from '../store/audit.ts';
import { sha256Hex } from '../store/crypto.ts';
import { getAppointment } from '../store/repo.ts';
import type { StaffUserTable } from '../store/schema.ts';
import { HttpError } from './errors.ts';

export const ROLES = ['owner', 'front_desk', 'practitioner'] as const;
export type Role = (typeof ROLES)[number];
const ROLE_SCOPES: Record<Role, Scope[]> = { owner: ['admin'], front_desk: ['write'], practitioner: ['read'] };

export const SESSION_COOKIE = 'meridian_session';
/** A session ends after this long without use, and in any case after MAX_SESSION_MS. */
const IDLE_MS = 12 * 3_600_000;
const MAX_SESSION_MS = 7 * 86_400_000;
export const MIN_PASSWORD = 10;

// ------------------------------------------------------------------ passwords

// OWASP's scrypt floor is N=2^17, r=8, p=1; 2^15 keeps a sign-in near 50 ms on a small clinic server
// while costing an attacker 32 MiB per guess.
const SCRYPT = { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 } as const;

function scryptAsync(password: string, salt: Buffer, len: number, o: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scrypt(password.normalize('NFKC'), salt, len, o, (err, key) => (err ? reject(err) : resolve(key))));
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt, 32, SCRYPT);
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, salt, hash] = stored.split('$');
  if (scheme !== 'scrypt' || !hash) return false;
  const want = Buffer.from(hash, 'base64');
  const got = await scryptAsync(password, Buffer.from(salt, 'base64'), want.length, { N: Number(n), r: Number(r), p: Number(p), maxmem: SCRYPT.maxmem });
  return timingSafeEqual(got, want);
}

/** Why a password is not acceptable, or undefined. */
export function passwordProblem(password: string, email: string): string | undefined {
  if (password.length < MIN_PASSWORD) return `a password needs at least ${MIN_PASSWORD} characters`;
  if (password.length > 200) return 'a password can have at most 200 characters';
  if (password.toLowerCase().includes(email.split('@')[0].toLowerCase())) return 'a password must not contain the e-mail name';
  return undefined;
}

// ------------------------------------------------------------------ users

export interface StaffUser {
  id: string;
  email: string;
  name: string;
  role: Role;
  practitionerId?: string;
  disabled: boolean;
  createdAt: string;
}

function toUser(r: StaffUserTable): StaffUser {
  return { id: r.id, email: r.email, name: r.name, role: r.role as Role, ...(r.practitioner_id ? { practitionerId: r.practitioner_id } : {}), disabled: r.disabled === 1, createdAt: r.created_at };
}

export class UserError extends HttpError {}

export interface NewUser { email: string; name?: string; role: Role; password: string; practitionerId?: string }

export async function createUser(hub: Hub, u: NewUser, actor: string): Promise<StaffUser> {
  const email = u.email.trim().toLowerCase();
  if (!z.email().safeParse(email).success) throw new UserError('invalid_email', 'that is not an e-mail address');
  if (!(ROLES as readonly string[]).includes(u.role)) throw new UserError('invalid_role', `the role must be one of ${ROLES.join(', ')}`);
  const weak = passwordProblem(u.password, email);
  if (weak) throw new UserError('weak_password', weak);
  if (u.role === 'practitioner') {
    if (!u.practitionerId) throw new UserError('practitioner_required', 'a practitioner account names the practitioner it belongs to');
    const p = await hub.store.db.selectFrom('practitioner').select('id').where('id', '=', u.practitionerId).executeTakeFirst();
    if (!p) throw new UserError('unknown_practitioner', `no practitioner ${u.practitionerId}`);
  }
  if (await hub.store.db.selectFrom('staff_user').select('id').where('email', '=', email).executeTakeFirst()) {
    throw new UserError('user_exists', `there is already an account for ${email}`);
  }
  const now = hub.clock.now().toISOString();
  const row: StaffUserTable = {
    id: randomUUID(), email, name: u.name?.trim() || email, role: u.role, practitioner_id: u.role === 'practitioner' ? u.practitionerId! : null,
    password_hash: await hashPassword(u.password), disabled: 0, created_at: now, updated_at: now,
  };
  await hub.store.db.transaction().execute(async (trx) => {
    await trx.insertInto('staff_user').values(row).execute();
    await appendAudit(trx, hub.store.dialect, [{ at: now, actor, action: 'staff.user_created', entityType: 'staff_user', entityId: row.id, after: { email, role: row.role, practitionerId: row.practitioner_id ?? undefined } }]);
  });
  return toUser(row);
}

export async function listUsers(hub: Hub): Promise<StaffUser[]> {
  return (await hub.store.db.selectFrom('staff_user').selectAll().orderBy('email').execute()).map(toUser);
}

export async function setUserDisabled(hub: Hub, id: string, disabled: boolean, actor: string): Promise<StaffUser> {
  const now = hub.clock.now().toISOString();
  await hub.store.db.transaction().execute(async (trx) => {
    const r = await trx.updateTable('staff_user').set({ disabled: disabled ? 1 : 0, updated_at: now }).where('id', '=', id).executeTakeFirst();
    if (Number(r.numUpdatedRows) === 0) throw new UserError('not_found', `no user ${id}`);
    if (disabled) await trx.deleteFrom('staff_session').where('user_id', '=', id).execute();
    await appendAudit(trx, hub.store.dialect, [{ at: now, actor, action: disabled ? 'staff.user_disabled' : 'staff.user_enabled', entityType: 'staff_user', entityId: id }]);
  });
  return toUser((await hub.store.db.selectFrom('staff_user').selectAll().where('id', '=', id).executeTakeFirstOrThrow()));
}

// ------------------------------------------------------------------ principals

/** Who is asking: an API key or a signed-in staff member. */
export interface Principal {
  kind: 'key' | 'session';
  /** How the audit log names them. */
  actor: string;
  scopes: Scope[];
  /** Set for a practitioner's session: everything is narrowed to this practitioner's appointments. */
  ownPractitioner?: string;
  user?: StaffUser;
  csrf?: string;
  /** A staff session's token hash (what an OAuth authorisation started in it is bound to). */
  sessionHash?: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}

function cookies(req: FastifyRequest): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    // A malformed %-escape (anyone can send any cookie) is no session, not a 500.
    try {
      out[part.slice(0, i).trim()] = decodeURIComponent(part.slice(i + 1).trim());
    } catch { /* ignored */ }
  }
  return out;
}

async function sessionPrincipal(hub: Hub, token: string): Promise<Principal | undefined> {
  if (!/^[A-Za-z0-9_-]{30,80}$/.test(token)) return undefined;
  const now = hub.clock.now();
  const s = await hub.store.db.selectFrom('staff_session').selectAll().where('token_hash', '=', sha256Hex(token)).executeTakeFirst();
  if (!s || s.expires_at <= now.toISOString()) return undefined;
  const u = await hub.store.db.selectFrom('staff_user').selectAll().where('id', '=', s.user_id).executeTakeFirst();
  if (!u || u.disabled) return undefined;
  // Slide the idle expiry, at most every five minutes (no write per request), never past the absolute cap.
  const next = Math.min(now.getTime() + IDLE_MS, Date.parse(s.created_at) + MAX_SESSION_MS);
  if (next - Date.parse(s.expires_at) > 300_000) {
    await hub.store.db.updateTable('staff_session').set({ expires_at: new Date(next).toISOString() }).where('token_hash', '=', s.token_hash).execute();
  }
  const user = toUser(u);
  return {
    kind: 'session', actor: `user:${user.email}`, scopes: ROLE_SCOPES[user.role], user, csrf: s.csrf, sessionHash: s.token_hash,
    ...(user.role === 'practitioner' ? { ownPractitioner: user.practitionerId } : {}),
  };
}

/** The owner's session by its token hash, while it is signed in and its account enabled (OAuth callbacks). */
export async function ownerSessionByHash(hub: Hub, tokenHash: string): Promise<StaffUser | undefined> {
  const s = await hub.store.db.selectFrom('staff_session').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
  if (!s || s.expires_at <= hub.clock.now().toISOString()) return undefined;
  const u = await hub.store.db.selectFrom('staff_user').selectAll().where('id', '=', s.user_id).executeTakeFirst();
  return u && !u.disabled && u.role === 'owner' ? toUser(u) : undefined;
}

/** The cookie reading of a request (a malformed value is no cookie). */
export function cookieOf(req: FastifyRequest, name: string): string | undefined {
  return cookies(req)[name];
}

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

function ownOrigins(hub: Hub, req: FastifyRequest): string[] {
  const list = [`${req.protocol}://${req.host}`];
  if (hub.publicUrl) list.push(new URL(hub.publicUrl).origin);
  return list;
}

/** Refuse a cookie-authenticated unsafe request that is not provably from our own page. */
function checkSameOrigin(hub: Hub, req: FastifyRequest): void {
  const origin = req.headers.origin;
  if (origin !== undefined && !ownOrigins(hub, req).includes(origin)) throw new HttpError('cross_origin', 'this request did not come from Meridian\'s own page');
  const site = req.headers['sec-fetch-site'];
  if (origin === undefined && site !== undefined && site !== 'same-origin' && site !== 'none') throw new HttpError('cross_origin', 'this request did not come from Meridian\'s own page');
}

function checkCsrf(hub: Hub, req: FastifyRequest, p: Principal): void {
  checkSameOrigin(hub, req);
  const sent = req.headers['x-csrf-token'];
  const ok = typeof sent === 'string' && p.csrf !== undefined && sent.length === p.csrf.length && timingSafeEqual(Buffer.from(sent), Buffer.from(p.csrf));
  if (!ok) throw new HttpError('csrf', 'missing or wrong x-csrf-token (sign in again)');
}

/** The API's authentication: an API key (Authorization: Bearer / X-API-Key) or a session cookie. */
export async function authenticate(hub: Hub, req: FastifyRequest): Promise<Principal> {
  const auth = req.headers.authorization;
  const key = auth?.startsWith('Bearer ') ? auth.slice(7).trim() : (req.headers['x-api-key'] as string | undefined);
  if (key) {
    const info = await checkApiKey(hub, key);
    if (!info) throw new HttpError('unauthenticated', 'this API key is not valid or was revoked');
    req.apiKey = info;
    return { kind: 'key', actor: `api:${info.name}`, scopes: info.scopes };
  }
  const token = cookies(req)[SESSION_COOKIE];
  const p = token ? await sessionPrincipal(hub, token) : undefined;
  if (!p) throw new HttpError('unauthenticated', token ? 'your session has ended: sign in again' : 'send an API key (Authorization: Bearer mer_…) or sign in');
  if (UNSAFE.has(req.method)) checkCsrf(hub, req, p);
  return p;
}

// ------------------------------------------------------------------ a practitioner's own-only view

type Rule = 'allow' | 'own-list' | 'own-appointment';
/** What a practitioner's session may call; everything else is refused (new routes are denied until listed). */
const PRACTITIONER_RULES: Record<string, Rule> = {
  'GET /appointments': 'own-list',
  'GET /appointments/:id': 'own-appointment',
  'GET /appointments/:id/audit': 'own-appointment',
  'GET /practitioners': 'allow',
  'GET /locations': 'allow',
  'GET /services': 'allow',
  'GET /audit/verify': 'allow',
};

const ONLY_OWN = 'a practitioner\'s sign-in shows only their own schedule';

/** Narrow or refuse a request from a practitioner's session before the route runs. */
export async function guardRoute(hub: Hub, p: Principal, route: { method: string; path: string }, params: Record<string, string>, query: Record<string, unknown>): Promise<void> {
  if (!p.ownPractitioner) return;
  const rule = PRACTITIONER_RULES[`${route.method} ${route.path}`];
  if (!rule) throw new HttpError('forbidden', ONLY_OWN);
  if (rule === 'own-list') {
    if (query.practitioner !== undefined && query.practitioner !== p.ownPractitioner) throw new HttpError('forbidden', ONLY_OWN);
    query.practitioner = p.ownPractitioner;
  }
  if (rule === 'own-appointment') {
    const a = await getAppointment(hub.store.db, params.id);
    // The same answer whether it exists or not: no probing for other practitioners' appointment ids.
    if (!a || a.practitionerId !== p.ownPractitioner) throw new HttpError('forbidden', ONLY_OWN);
  }
}

/** Defence in depth: any appointment-shaped object of another practitioner in an answer loses its patient data. */
export function redactFor<T>(p: Principal, value: T): T {
  const own = p.ownPractitioner;
  if (!own) return value;
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (!v || typeof v !== 'object') return v;
    const o = v as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(o)) out[k] = walk(x);
    if ('patient' in o && typeof o.practitionerId === 'string' && o.practitionerId !== own) {
      out.patient = { name: 'Another practitioner\'s patient' };
      delete out.notes;
    }
    return out;
  };
  return walk(value) as T;
}

// ------------------------------------------------------------------ sign-in routes

// Failed sign-ins are counted twice, in this process: per client address and account, and per account.
// A client that gets one account's password wrong CLIENT_LIMIT times is refused (429) for that account for
// a quarter of an hour; everyone else can still sign in. Only ACCOUNT_LIMIT failures from any clients lock
// the account itself, so a stranger can no longer lock a colleague out with five wrong guesses, and the
// owner is told (an audit entry and a staff alert). Each attempt is counted BEFORE the password is hashed,
// synchronously (no await between the check and the count), so sending many guesses at once gains nothing:
// once a limit is reached every further attempt, even with the right password, is refused before hashing.
export const CLIENT_LIMIT = 5;
export const ACCOUNT_LIMIT = 20;
const LOCK_MS = 15 * 60_000;
const MAX_TRACKED = 50_000;

interface Count { n: number; until: number; announced?: boolean }

export class SignInGuard {
  private readonly counts = new Map<string, Count>();

  constructor(private readonly now: () => number) {}

  private current(key: string, t: number): Count | undefined {
    const c = this.counts.get(key);
    if (c && c.until <= t) {
      this.counts.delete(key);
      return undefined;
    }
    return c;
  }

  /**
   * Count one attempt for `ip` on `email` before its password is checked: undefined when it may go ahead,
   * else how long to wait (and whether it is the account, not only this client, that is locked).
   */
  begin(ip: string, email: string): { retryAfterMs: number; account: boolean } | undefined {
    const t = this.now();
    const acc = this.current(`a ${email}`, t);
    if (acc && acc.n >= ACCOUNT_LIMIT) return { retryAfterMs: acc.until - t, account: true };
    const cli = this.current(`c ${ip} ${email}`, t);
    if (cli && cli.n >= CLIENT_LIMIT) return { retryAfterMs: cli.until - t, account: false };
    this.bump(`a ${email}`, acc, t);
    this.bump(`c ${ip} ${email}`, cli, t);
    return undefined;
  }

  /** The password was right: this attempt and this client's earlier failures on the account no longer count. */
  succeeded(ip: string, email: string): void {
    this.counts.delete(`c ${ip} ${email}`);
    const acc = this.counts.get(`a ${email}`);
    if (acc) acc.n = Math.max(0, acc.n - 1);
  }

  /** After a failure: true exactly once when the account has just reached its lock. */
  accountJustLocked(email: string): boolean {
    const acc = this.current(`a ${email}`, this.now());
    if (!acc || acc.n < ACCOUNT_LIMIT || acc.announced) return false;
    acc.announced = true;
    return true;
  }

  private bump(key: string, c: Count | undefined, t: number): void {
    const next = { n: (c?.n ?? 0) + 1, until: t + LOCK_MS, announced: c?.announced };
    this.counts.delete(key);
    this.counts.set(key, next);
    // Bounded under a spray of addresses or e-mails: forget the oldest first.
    if (this.counts.size > MAX_TRACKED) this.counts.delete(this.counts.keys().next().value!);
  }
}

function sessionCookie(hub: Hub, req: FastifyRequest, value: string, maxAgeS: number): string {
  const secure = req.protocol === 'https' || hub.publicUrl?.startsWith('https:') ? '; Secure' : '';
  return `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeS}${secure}`;
}

function me(p: Principal) {
  const u = p.user!;
  return { user: { id: u.id, email: u.email, name: u.name, role: u.role, practitionerId: u.practitionerId }, scopes: p.scopes, csrf: p.csrf };
}

const loginBody = z.object({ email: z.string().min(1).max(320), password: z.string().min(1).max(200) }).strict();

/** The staff (and so the account's owner) hear of a lock by e-mail when staff alerts are set up. */
async function tellAccountLocked(hub: Hub, email: string, at: string): Promise<void> {
  try {
    await alertStaff(hub, undefined, { type: 'account_locked', ref: `${email}@${at}`, summary: `The sign-in of ${email} is locked for ${LOCK_MS / 60_000} minutes after ${ACCOUNT_LIMIT} wrong passwords from any addresses. If this was not its owner, someone is guessing its password.` });
  } catch (err) {
    hub.log.warn({ err: { message: (err as Error).message } }, 'could not alert staff of a locked account');
  }
}

export async function registerAuth(app: FastifyInstance, hub: Hub): Promise<void> {
  const guard = new SignInGuard(() => hub.clock.now().getTime());
  app.post('/auth/login', async (req: FastifyRequest, reply: FastifyReply) => {
    checkSameOrigin(hub, req); // login CSRF: a foreign page must not sign a browser into our account
    const b = loginBody.parse(req.body ?? {});
    const email = b.email.trim().toLowerCase();
    const now = hub.clock.now();
    // Counted before any await: parallel attempts each see the ones started before them.
    const refused = guard.begin(req.ip, email);
    if (refused) {
      reply.header('retry-after', String(Math.max(1, Math.ceil(refused.retryAfterMs / 1000))));
      throw new HttpError('locked', refused.account
        ? 'too many failed sign-ins for this account: it is locked for a quarter of an hour'
        : 'too many failed sign-ins from this address for this account: wait a quarter of an hour');
    }
    const u = await hub.store.db.selectFrom('staff_user').selectAll().where('email', '=', email).executeTakeFirst();
    // Unknown accounts cost the same scrypt as known ones, so timing does not tell which e-mails exist.
    const ok = u ? await verifyPassword(b.password, u.password_hash) : (await hashPassword(b.password), false);
    const at = now.toISOString();
    if (!ok || !u || u.disabled) {
      if (u) {
        const locked = guard.accountJustLocked(email);
        await hub.store.db.transaction().execute((trx) => appendAudit(trx, hub.store.dialect, [
          { at, actor: `user:${email}`, action: 'staff.sign_in_failed', entityType: 'staff_user', entityId: u.id, meta: { client: req.ip } },
          ...(locked ? [{ at, actor: 'system', action: 'staff.account_locked', entityType: 'staff_user', entityId: u.id, meta: { failures: ACCOUNT_LIMIT, minutes: LOCK_MS / 60_000 } }] : []),
        ]));
        if (locked) await tellAccountLocked(hub, email, at);
      }
      throw new HttpError('bad_credentials', 'the e-mail or password is not right');
    }
    guard.succeeded(req.ip, email);
    const token = randomBytes(32).toString('base64url');
    const csrf = randomBytes(24).toString('base64url');
    await hub.store.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('staff_session').where('expires_at', '<', at).execute();
      await trx.insertInto('staff_session').values({ token_hash: sha256Hex(token), user_id: u.id, csrf, created_at: at, expires_at: new Date(now.getTime() + IDLE_MS).toISOString() }).execute();
      await appendAudit(trx, hub.store.dialect, [{ at, actor: `user:${email}`, action: 'staff.signed_in', entityType: 'staff_user', entityId: u.id }]);
    });
    reply.header('set-cookie', sessionCookie(hub, req, token, MAX_SESSION_MS / 1000));
    const user = toUser(u);
    return me({ kind: 'session', actor: `user:${email}`, scopes: ROLE_SCOPES[user.role], user, csrf });
  });

  app.post('/auth/logout', async (req: FastifyRequest, reply: FastifyReply) => {
    const token = cookies(req)[SESSION_COOKIE];
    const p = token ? await sessionPrincipal(hub, token) : undefined;
    if (p) {
      // Signing out is safe, so it needs no CSRF token: a page that lost its token still ends its session.
      // A foreign site cannot use this to sign anyone out: the SameSite=Strict cookie is not sent on its
      // requests, and the same-origin check still refuses a sibling subdomain (same site, other origin).
      checkSameOrigin(hub, req);
      await hub.store.db.deleteFrom('staff_session').where('token_hash', '=', sha256Hex(token!)).execute();
    }
    reply.header('set-cookie', sessionCookie(hub, req, '', 0));
    return { signedOut: true };
  });

  app.get('/auth/me', async (req: FastifyRequest) => {
    const token = cookies(req)[SESSION_COOKIE];
    const p = token ? await sessionPrincipal(hub, token) : undefined;
    if (!p) throw new HttpError('unauthenticated', 'not signed in');
    return me(p);
  });
}
