/**
 * Connections to the Redis server that carries fhenet's shared state (key store, PBS queue, sweep queue).
 *
 * One URL form everywhere (`--store`, `--queue`): `redis://[user:password@]host[:port][/db]` (`rediss://` for TLS).
 * The URL is checked here so that a typo is a one-line error naming the flag, not an ioredis reconnect loop.
 * BullMQ needs `maxRetriesPerRequest: null` on the connections it blocks on; fhenet's own commands use a bounded
 * retry count so that a Redis outage surfaces as an error instead of a request that never ends.
 */
import type { ConnectionOptions } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import { ConfigError, FhenetError } from '../util/errors.js';

export interface RedisTarget {
  /** ioredis options (host, port, db, credentials, tls). */
  options: RedisOptions;
  /** The URL without its password, for logs. */
  display: string;
}

/** Parses and checks a `redis://` URL; `flag` names the option in the error message. */
export function parseRedisUrl(url: string, flag = '--queue'): RedisTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ConfigError(`${flag} ${JSON.stringify(url)} is not a URL; expected redis://host:port[/db]`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new ConfigError(`${flag} ${JSON.stringify(url)}: the scheme must be redis:// or rediss://`);
  if (!u.hostname) throw new ConfigError(`${flag} ${JSON.stringify(url)} names no host; expected redis://host:port[/db]`);
  const port = u.port ? Number(u.port) : 6379;
  const dbText = u.pathname.replace(/^\//, '');
  if (dbText !== '' && !/^\d{1,2}$/.test(dbText)) throw new ConfigError(`${flag} ${JSON.stringify(url)}: the path must be a database number (0–15), got '${dbText}'`);
  const options: RedisOptions = {
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port,
    db: dbText === '' ? 0 : Number(dbText),
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
  };
  const display = `${u.protocol}//${u.username ? `${u.username}@` : ''}${u.host}${dbText ? `/${dbText}` : ''}`;
  return { options, display };
}

/** Options for a BullMQ connection (blocking commands must not give up while the server restarts). */
export function bullConnection(target: RedisTarget): ConnectionOptions {
  const o = target.options;
  return {
    host: o.host,
    port: o.port,
    db: o.db,
    ...(o.username ? { username: o.username } : {}),
    ...(o.password ? { password: o.password } : {}),
    ...(o.tls ? { tls: o.tls } : {}),
    maxRetriesPerRequest: null,
  };
}

/**
 * A plain client for fhenet's own commands. Commands wait (bounded by `maxRetriesPerRequest` reconnect attempts,
 * ≈ 10 s in all) while Redis restarts, then fail with an error.
 */
export function connectRedis(target: RedisTarget, name = 'fhenet'): Redis {
  const r = new Redis({
    ...target.options,
    connectionName: name,
    maxRetriesPerRequest: 20,
    retryStrategy: (times) => Math.min(50 * times, 1000),
  });
  // Connection errors surface as failed commands (bounded by maxRetriesPerRequest); no unhandled-error noise.
  r.on('error', () => undefined);
  return r;
}

/** Redis is unreachable or refuses fhenet's commands (a bad URL, password or server). */
export class RedisUnavailable extends FhenetError {
  override name = 'RedisUnavailable';
}

/**
 * One bounded attempt to reach Redis (`timeoutMs`), so that a command started with a wrong address says so at once
 * instead of retrying forever.
 */
export async function checkRedis(target: RedisTarget, flag: string, timeoutMs = 10_000): Promise<void> {
  const r = new Redis({ ...target.options, lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 0, retryStrategy: () => null });
  let cause: Error | undefined;
  r.on('error', (e: Error) => (cause ??= e));
  try {
    await r.connect();
    await r.ping();
  } catch (e) {
    throw new RedisUnavailable(`${flag} ${target.display}: cannot reach Redis (${(cause ?? (e as Error)).message}); start redis-server or fix the URL`);
  } finally {
    r.disconnect();
  }
}
