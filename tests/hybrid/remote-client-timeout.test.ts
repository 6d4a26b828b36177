/**
 * The client's wait for a slow answer. The "server crash" of experiments/hybrid-llm (perplexity.ts --tokens 257 under
 * load) was the client giving up: Node's fetch abandons a request whose answer has not begun after 300 s (undici's
 * headersTimeout), one encrypted 128-token layer took longer on the loaded machine, and the client's error said only
 * "cannot reach … (fetch failed)". RemoteClient now waits `timeoutMs` (default one hour), says when it timed out,
 * and passes on the cause of a network failure.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RemoteCallError } from '../../src/hybrid/errors.js';
import { DEFAULT_REMOTE_TIMEOUT_MS, RemoteClient } from '../../src/hybrid/remote-client.js';

let server: http.Server;
let url = '';

beforeAll(async () => {
  // /list_modules?model_name=MS answers after MS milliseconds (standing in for a slow encrypted layer)
  server = http.createServer((req, res) => {
    const ms = Number(new URL(req.url!, 'http://x').searchParams.get('model_name'));
    setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end('{"modules":[]}'), ms);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const failure = (p: Promise<unknown>): Promise<RemoteCallError> =>
  p.then(
    () => {
      throw new Error('expected a RemoteCallError');
    },
    (e: unknown) => e as RemoteCallError,
  );

describe('RemoteClient waiting for the server', () => {
  it('waits far longer than fetch\'s 300 s by default', () => {
    expect(DEFAULT_REMOTE_TIMEOUT_MS).toBeGreaterThanOrEqual(3_600_000);
  });

  it('an answer slower than timeoutMs is a 504 `timeout` that says so and what to do', async () => {
    const e = await failure(new RemoteClient(url, { timeoutMs: 300 }).listModules('1500'));
    expect(e).toBeInstanceOf(RemoteCallError);
    expect(e.statusCode).toBe(504);
    expect(e.code).toBe('timeout');
    expect(e.message).toMatch(/no answer from http:\/\/127\.0\.0\.1:\d+ within 0\.3 s \(UND_ERR_HEADERS_TIMEOUT: .*\); the server may be overloaded: send fewer tokens per request, or raise timeoutMs/);
  });

  it('an answer within timeoutMs arrives', async () => {
    await expect(new RemoteClient(url, { timeoutMs: 5000 }).listModules('200')).resolves.toEqual({ modules: [] });
  });

  it('a server that is not there: 503 `unreachable` naming the cause (not just "fetch failed")', async () => {
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const e = await failure(new RemoteClient(`http://127.0.0.1:${port}`).listModels());
    expect(e.statusCode).toBe(503);
    expect(e.code).toBe('unreachable');
    expect(e.message).toMatch(/cannot reach http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED: connect ECONNREFUSED/);
  });
});
