// Secrets at rest: AES-256-GCM with a key from MERIDIAN_SECRET_KEY (base64, 32 bytes) or, in
// embedded mode, a key file created on first run with mode 0600.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync, mkdirSync, chmodSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Kysely } from 'kysely';
import type { DB } from './schema.ts';

export class SecretBox {
  private readonly keys: Map<string, Buffer>;
  /** Key used for new ciphertexts; older keys stay readable (rotation). */
  private readonly current: string;

  constructor(keys: Buffer[]) {
    if (keys.length === 0) throw new Error('no encryption key');
    for (const k of keys) if (k.length !== 32) throw new Error('an encryption key must be 32 bytes (base64 of 32 random bytes)');
    this.keys = new Map(keys.map((k) => [keyId(k), k]));
    this.current = keyId(keys[0]);
  }

  encrypt(plain: string): string {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.keys.get(this.current)!, iv);
    const ct = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
    return ['v1', this.current, iv.toString('base64'), c.getAuthTag().toString('base64'), ct.toString('base64')].join(':');
  }

  decrypt(box: string): string {
    const [v, kid, iv, tag, ct] = box.split(':');
    if (v !== 'v1' || !kid || !iv || !tag || ct === undefined) throw new Error('not a Meridian secret box');
    const key = this.keys.get(kid);
    if (!key) throw new Error(`secret was encrypted with an unknown key ${kid}`);
    const d = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64'));
    d.setAuthTag(Buffer.from(tag, 'base64'));
    return Buffer.concat([d.update(Buffer.from(ct, 'base64')), d.final()]).toString('utf8');
  }

  encryptJson(v: unknown): string {
    return this.encrypt(JSON.stringify(v));
  }

  decryptJson<T>(box: string): T {
    return JSON.parse(this.decrypt(box)) as T;
  }

  /** Id of the key new ciphertexts use (the first of MERIDIAN_SECRET_KEY / the key file). */
  get currentKeyId(): string {
    return this.current;
  }

  /** The same plaintext under the current key (unchanged when it already is). */
  reencrypt(box: string): string {
    return box.split(':')[1] === this.current ? box : this.encrypt(this.decrypt(box));
  }
}

/** Every ciphertext the store holds (connection secrets, feed tokens), re-encrypted with the current key. */
export async function reencryptStore(db: Kysely<DB>, box: SecretBox): Promise<{ reencrypted: number; total: number }> {
  let reencrypted = 0;
  let total = 0;
  await db.transaction().execute(async (trx) => {
    for (const r of await trx.selectFrom('connection').select(['id', 'secrets_enc']).where('secrets_enc', 'is not', null).execute()) {
      total += 1;
      const next = box.reencrypt(r.secrets_enc!);
      if (next !== r.secrets_enc) await trx.updateTable('connection').set({ secrets_enc: next }).where('id', '=', r.id).execute();
      if (next !== r.secrets_enc) reencrypted += 1;
    }
    for (const r of await trx.selectFrom('feed').select(['id', 'token_enc']).execute()) {
      total += 1;
      const next = box.reencrypt(r.token_enc);
      if (next !== r.token_enc) await trx.updateTable('feed').set({ token_enc: next }).where('id', '=', r.id).execute();
      if (next !== r.token_enc) reencrypted += 1;
    }
  });
  return { reencrypted, total };
}

/** Put a fresh key first in the key file (embedded mode); returns it. Older keys stay until `dropOlderKeys`. */
export function prependKeyFile(keyFile: string): Buffer {
  const key = randomBytes(32);
  const old = existsSync(keyFile) ? readFileSync(keyFile, 'utf8') : '';
  writeFileSync(keyFile, `${key.toString('base64')}\n${old}`, { mode: 0o600 });
  chmodSync(keyFile, 0o600);
  return key;
}

/** Keep only the newest key in the key file (after everything was re-encrypted with it). */
export function dropOlderKeys(keyFile: string): number {
  const keys = readFileSync(keyFile, 'utf8').split('\n').map((s) => s.trim()).filter(Boolean);
  writeFileSync(keyFile, `${keys[0]}\n`, { mode: 0o600 });
  return keys.length - 1;
}

function keyId(k: Buffer): string {
  return createHash('sha256').update(k).digest('hex').slice(0, 8);
}

/**
 * The key(s): MERIDIAN_SECRET_KEY (comma-separated base64 keys, newest first) or the key file.
 * The key file is created with mode 0600 when neither exists.
 */
export function loadSecretBox(keyFile: string, env: NodeJS.ProcessEnv = process.env): SecretBox {
  const fromEnv = env.MERIDIAN_SECRET_KEY;
  if (fromEnv) return new SecretBox(fromEnv.split(',').map((s) => Buffer.from(s.trim(), 'base64')));
  if (!existsSync(keyFile)) {
    mkdirSync(dirname(keyFile), { recursive: true, mode: 0o700 });
    writeFileSync(keyFile, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
    chmodSync(keyFile, 0o600);
  }
  const keys = readFileSync(keyFile, 'utf8').split('\n').map((s) => s.trim()).filter(Boolean);
  return new SecretBox(keys.map((s) => Buffer.from(s, 'base64')));
}

export function sha256Hex(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}
