/**
 * RemoteClient's `timeoutMs` is the undici dispatcher's headers/body timeout: a slow answer within it arrives (Node's
 * fetch alone would give up after 300 s with a bare "fetch failed"); one past it is a RemoteCallError that says so
 * (undici checks its timeouts on a coarse clock, hence a 3 s answer against a 0.2 s limit).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Fastify from 'fastify';
import type { AddressInfo } from 'node:net';
import { RemoteClient } from '../../src/hybrid/remote-client.js';
import { RemoteCallError } from '../../src/hybrid/errors.js';

const app = Fastify({ logger: false });
let url = '';
beforeAll(async () => {
  app.get('/list_models', async () => {
    await new Promise((r) => setTimeout(r, 3_000));
    return { models: ['slow'] };
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
});
afterAll(() => app.close());

describe('RemoteClient timeouts', () => {
  it('waits up to timeoutMs for the answer, and names the timeout past it', async () => {
    expect(await new RemoteClient(url, { timeoutMs: 10_000 }).listModels()).toEqual({ models: ['slow'] });
    const e = await new RemoteClient(url, { timeoutMs: 200 }).listModels().catch((err: unknown) => err);
    expect(e).toBeInstanceOf(RemoteCallError);
    expect([(e as RemoteCallError).statusCode, (e as RemoteCallError).code]).toEqual([503, 'unreachable']);
    expect((e as Error).message).toMatch(/no answer within 200 ms/);
  });
});
