/**
 * Stored-password formats for proxy authentication, each compiled once into a verifier.
 *
 * In `forward.auth.users` (name → value):
 *   - `scrypt:N:r:p:SALT:KEY`  scrypt with cost N, block size r, parallelism p; SALT and KEY base64.
 *                              Make one with `hashPasswordScrypt()` or:
 *                              node -e 'const c=require("crypto"),s=c.randomBytes(16);console.log(["scrypt",16384,8,1,s.toString("base64"),c.scryptSync(process.argv[1],s,32,{N:16384,r:8,p:1}).toString("base64")].join(":"))' 'the password'
 *   - `bcrypt:$2y$10$…`        a bcrypt hash (`htpasswd -nbB user pass`), verified with bcryptjs
 *   - `plain:TEXT`             the password TEXT (for passwords that begin with a scheme word)
 *   - anything else            the password itself
 * In an htpasswd file (`user:hash` lines): `$2y$`/`$2a$`/`$2b$` (bcrypt), `$apr1$` and `$1$`
 * (MD5-crypt), `{SHA}` (base64 SHA-1), and plain text otherwise. DES `crypt()` hashes are not supported.
 *
 * Every comparison is constant-time over equal-length digests.
 */
import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import bcrypt from 'bcryptjs';

export interface PasswordVerifier {
  /** True when `candidate` is the password. */
  verify(candidate: string): boolean | Promise<boolean>;
  /** True when verification costs real CPU time (worth remembering a success). */
  readonly expensive: boolean;
}

/** Compiles a `users` value. Throws Error(expected …) for a malformed hash. */
export function userPasswordVerifier(stored: string): PasswordVerifier {
  if (stored.startsWith('scrypt:')) return scryptVerifier(stored);
  if (stored.startsWith('bcrypt:')) return bcryptVerifier(stored.slice(7));
  if (stored.startsWith('plain:')) return plainVerifier(stored.slice(6));
  return plainVerifier(stored);
}

/** Compiles the hash field of an htpasswd line. */
export function htpasswdVerifier(stored: string): PasswordVerifier {
  if (/^\$2[abxy]\$/.test(stored)) return bcryptVerifier(stored);
  if (stored.startsWith('$apr1$')) return md5CryptVerifier(stored, '$apr1$');
  if (stored.startsWith('$1$')) return md5CryptVerifier(stored, '$1$');
  if (stored.startsWith('{SHA}')) return sha1Verifier(stored);
  if (/^\$(5|6|y|7)\$/.test(stored)) throw new Error('expected a bcrypt ($2y$), MD5 ($apr1$), {SHA} or plain entry; SHA-crypt and yescrypt hashes are not supported');
  return plainVerifier(stored);
}

/** A dummy check with the cost of a cheap verifier, for unknown user names. */
export const unknownUserVerifier: PasswordVerifier = plainVerifier(randomBytes(16).toString('hex'));

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

function plainVerifier(password: string): PasswordVerifier {
  const expected = sha256(password);
  return { expensive: false, verify: (candidate) => timingSafeEqual(sha256(candidate), expected) };
}

function sha1Verifier(stored: string): PasswordVerifier {
  const expected = Buffer.from(stored.slice(5), 'base64');
  if (expected.length !== 20) throw new Error('expected {SHA} followed by a base64 SHA-1 digest');
  return {
    expensive: false,
    verify: (candidate) => timingSafeEqual(createHash('sha1').update(candidate, 'utf8').digest(), expected),
  };
}

function bcryptVerifier(hash: string): PasswordVerifier {
  if (!/^\$2[abxy]\$\d{2}\$[./A-Za-z0-9]{53}$/.test(hash)) throw new Error('expected a bcrypt hash like "$2y$10$…" (60 characters)');
  // bcryptjs knows $2a$/$2b$/$2y$; $2x$ (the old buggy variant) is compared as $2a$.
  const normalized = hash.startsWith('$2x$') ? `$2a$${hash.slice(4)}` : hash;
  return { expensive: true, verify: (candidate) => bcrypt.compare(candidate, normalized) };
}

const SCRYPT_FORMAT = 'expected "scrypt:N:r:p:SALT:KEY" with N a power of two, SALT and KEY in base64';

function scryptVerifier(stored: string): PasswordVerifier {
  const parts = stored.split(':');
  if (parts.length !== 6) throw new Error(SCRYPT_FORMAT);
  const [, nText, rText, pText, saltText, keyText] = parts as [string, string, string, string, string, string];
  const N = Number(nText);
  const r = Number(rText);
  const p = Number(pText);
  const salt = Buffer.from(saltText, 'base64');
  const key = Buffer.from(keyText, 'base64');
  const valid =
    Number.isInteger(N) && N > 1 && (N & (N - 1)) === 0 && N <= 2 ** 20 && Number.isInteger(r) && r > 0 && r <= 32 && Number.isInteger(p) && p > 0 && p <= 16;
  if (!valid || salt.length < 8 || key.length < 16) throw new Error(SCRYPT_FORMAT);
  const maxmem = 256 * N * r + 1024 * 1024;
  return {
    expensive: true,
    verify: (candidate) =>
      new Promise<boolean>((resolve) => {
        scrypt(candidate, salt, key.length, { N, r, p, maxmem }, (err, derived) => {
          resolve(err === null && timingSafeEqual(derived, key));
        });
      }),
  };
}

/** `scrypt:16384:8:1:SALT:KEY` for `password`: the format `users` accepts. */
export function hashPasswordScrypt(password: string, N = 16384, r = 8, p = 1): Promise<string> {
  const salt = randomBytes(16);
  return new Promise((resolve, reject) => {
    scrypt(password, salt, 32, { N, r, p, maxmem: 256 * N * r + 1024 * 1024 }, (err, key) => {
      if (err) reject(err);
      else resolve(`scrypt:${N}:${r}:${p}:${salt.toString('base64')}:${key.toString('base64')}`);
    });
  });
}

// --- MD5-crypt (`$1$`, and Apache's `$apr1$` variant, which differs only in the magic string) ---

const ITOA64 = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

function md5CryptVerifier(stored: string, magic: string): PasswordVerifier {
  const rest = stored.slice(magic.length);
  const dollar = rest.indexOf('$');
  if (dollar < 0 || dollar > 8 || rest.length - dollar - 1 !== 22) throw new Error(`expected an MD5-crypt hash like "${magic}SALT$HASH"`);
  const salt = rest.slice(0, dollar);
  const expected = Buffer.from(stored, 'latin1');
  return {
    expensive: true,
    verify: (candidate) => {
      const computed = Buffer.from(md5Crypt(candidate, salt, magic), 'latin1');
      return computed.length === expected.length && timingSafeEqual(computed, expected);
    },
  };
}

export function md5Crypt(password: string, salt: string, magic: string): string {
  const pw = Buffer.from(password, 'utf8');
  const sl = Buffer.from(salt, 'latin1');
  const mg = Buffer.from(magic, 'latin1');
  const alt = createHash('md5').update(pw).update(sl).update(pw).digest();
  const ctx = createHash('md5').update(pw).update(mg).update(sl);
  for (let left = pw.length; left > 0; left -= 16) ctx.update(alt.subarray(0, Math.min(left, 16)));
  const zero = Buffer.from([0]);
  const first = pw.subarray(0, 1);
  for (let i = pw.length; i > 0; i >>= 1) ctx.update(i & 1 ? zero : first.length ? first : zero);
  let final = ctx.digest();
  for (let i = 0; i < 1000; i++) {
    const round = createHash('md5');
    round.update(i & 1 ? pw : final);
    if (i % 3) round.update(sl);
    if (i % 7) round.update(pw);
    round.update(i & 1 ? final : pw);
    final = round.digest();
  }
  const f = final;
  let out = '';
  const to64 = (value: number, count: number) => {
    let v = value;
    for (let n = 0; n < count; n++) {
      out += ITOA64[v & 0x3f];
      v >>= 6;
    }
  };
  to64((f[0]! << 16) | (f[6]! << 8) | f[12]!, 4);
  to64((f[1]! << 16) | (f[7]! << 8) | f[13]!, 4);
  to64((f[2]! << 16) | (f[8]! << 8) | f[14]!, 4);
  to64((f[3]! << 16) | (f[9]! << 8) | f[15]!, 4);
  to64((f[4]! << 16) | (f[10]! << 8) | f[5]!, 4);
  to64(f[11]!, 2);
  return `${magic}${salt}$${out}`;
}
