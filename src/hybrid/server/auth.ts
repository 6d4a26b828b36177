/**
 * Bearer-token access control for the model server (`fhenet serve --token-file`). Optional: without tokens the
 * server is open, as the reference's is. With tokens every route except /health needs `Authorization: Bearer <t>`,
 * and an evaluation key can only be used by a holder of the token that uploaded it (its `owner`), so one tenant
 * cannot spend another's uploaded keys even if it learns a uid. A token file is re-read on SIGHUP (rotation without
 * a restart; a file that does not parse leaves the current tokens in force).
 */
import * as fs from 'node:fs';
import { createHash, timingSafeEqual } from 'node:crypto';
import { FhenetError } from '../../util/errors.js';
import { HybridError } from '../errors.js';

/** Visible ASCII without spaces, at least 16 characters (e.g. `openssl rand -hex 32`). */
const TOKEN_RE = /^[\x21-\x7e]{16,4096}$/;
/** RFC 7235: the auth scheme is case-insensitive. */
const HEADER_RE = /^Bearer +([\x21-\x7e]{1,4096})$/i;

const digest = (token: string): Buffer => createHash('sha256').update(token, 'utf8').digest();

/** Tokens of a token file: one per line; blank lines and lines starting with `#` are skipped. */
export function readTokenFile(file: string): string[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new FhenetError(`cannot read token file ${file}: ${(e as Error).message}`);
  }
  const tokens = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  if (!tokens.length) throw new FhenetError(`token file ${file} holds no token (one per line)`);
  return tokens;
}

export class BearerAuth {
  private digests: Buffer[];

  constructor(tokens: readonly string[]) {
    this.digests = BearerAuth.digestsOf(tokens);
  }

  private static digestsOf(tokens: readonly string[]): Buffer[] {
    if (!tokens.length) throw new FhenetError('no token given');
    tokens.forEach((t, i) => {
      if (!TOKEN_RE.test(t)) throw new FhenetError(`token ${i + 1} must be 16 to 4096 visible ASCII characters without spaces`);
    });
    return tokens.map(digest);
  }

  /** How many tokens are accepted. */
  get size(): number {
    return this.digests.length;
  }

  /**
   * Rotation: accept exactly `tokens` from now on (all validated first; on error the old ones stay). Keys uploaded
   * under a retired token stay bound to it, so no holder of a new token can use them.
   */
  replace(tokens: readonly string[]): void {
    this.digests = BearerAuth.digestsOf(tokens);
  }

  /**
   * The owner id of a request's token (a hash prefix: it names the token in key metadata without storing it), or a
   * 401 HybridError. Digests of equal length are compared in constant time, so the comparison leaks no prefix.
   */
  ownerOf(authorization: string | undefined): string {
    const m = HEADER_RE.exec(authorization ?? '');
    const d = m ? digest(m[1]!) : undefined;
    if (!d || !this.digests.some((x) => timingSafeEqual(x, d))) {
      throw new HybridError(authorization ? 'invalid bearer token' : 'this server needs a bearer token (Authorization: Bearer <token>)', 401, 'unauthorized');
    }
    return d.subarray(0, 8).toString('hex');
  }
}
