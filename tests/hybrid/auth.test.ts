/**
 * Bearer-token access control of the model server: every route but /health needs a valid token (checked before an
 * upload's body is read), a key answers only to the token that uploaded it, tokens never reach the key store, and
 * HybridFHEModel sends its token and still gets the simulation's exact results.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/backend/index.js';
import { manualSeed } from '../../src/nn/init.js';
import { HybridFHEModel } from '../../src/hybrid/hybrid-model.js';
import { FHEModelClient } from '../../src/hybrid/deployment.js';
import { RemoteClient } from '../../src/hybrid/remote-client.js';
import { RemoteCallError } from '../../src/hybrid/errors.js';
import { BearerAuth, readTokenFile } from '../../src/hybrid/server/auth.js';
import { filesUnder, SeedNet, startServer, tmpDir } from './helpers.js';

const root = tmpDir('auth');
const modelsDir = path.join(root, 'models');
const keysDir = path.join(root, 'keys');
const ALICE = 'alice-0123456789abcdef';
const BOB = 'bob-fedcba9876543210xyz';
let expected: number[] = [];
const x = () => tf.tensor2d(Array.from({ length: 30 }, (_, i) => Math.sin(i * 0.7)), [3, 10]);
let server: Awaited<ReturnType<typeof startServer>>;

beforeAll(async () => {
  await initBackend();
  manualSeed(7);
  const h = new HybridFHEModel(new SeedNet(), ['seq.0'], { modelName: 'seed' });
  h.compileModel(tf.randomUniform([100, 10], -1, 1, 'float32', 4), { nBits: 6 });
  h.setFheMode('simulate');
  const xs = x();
  const y = await h.forward(xs);
  expected = Array.from(y.dataSync());
  tf.dispose([xs, y]);
  h.saveAndClearPrivateInfo(path.join(modelsDir, 'seed'));
  server = await startServer({ modelsDir, keysDir, apiTokens: [ALICE, BOB] });
});
afterAll(async () => {
  await server.app.close();
  fs.rmSync(root, { recursive: true, force: true });
});

async function failure(p: Promise<unknown>): Promise<{ status: number; code: string }> {
  try {
    await p;
  } catch (e) {
    if (e instanceof RemoteCallError) return { status: e.statusCode, code: e.code };
    throw e;
  }
  throw new Error('expected the call to fail');
}

describe('model server with bearer tokens', () => {
  it('answers /health to anyone and 401 with WWW-Authenticate to a missing or wrong token', async () => {
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
    const none = await fetch(`${server.url}/list_models`);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer realm="fhenet"');
    expect(await none.json()).toMatchObject({ statusCode: 401, error: 'Unauthorized', code: 'unauthorized' });
    expect(await failure(new RemoteClient(server.url, { token: `${ALICE}x` }).listModels())).toEqual({ status: 401, code: 'unauthorized' });
    expect(await failure(new RemoteClient(server.url).getClient('seed', 'seq.0', '10'))).toEqual({ status: 401, code: 'unauthorized' });
    expect((await new RemoteClient(server.url, { token: BOB }).listModels()).models).toEqual(['seed']);
  });

  it('refuses an unauthenticated key upload before storing any of it', async () => {
    const before = filesUnder(keysDir).length;
    const big = new Uint8Array(4 * 2 ** 20);
    expect(await failure(new RemoteClient(server.url).addKey('seed', 'seq.0', '10', big))).toEqual({ status: 401, code: 'unauthorized' });
    expect(filesUnder(keysDir)).toHaveLength(before);
  });

  it('a uid answers only to the token that uploaded its key; the token itself is stored nowhere', async () => {
    const alice = new RemoteClient(server.url, { token: ALICE });
    const bob = new RemoteClient(server.url, { token: BOB });
    const client = FHEModelClient.fromArtefact(await alice.getClient('seed', 'seq.0', '10'));
    client.generatePrivateAndEvaluationKeys();
    const uid = await alice.addKey('seed', 'seq.0', '10', client.getSerializedEvaluationKeys());
    const ct = client.quantizeEncryptSerialize(Float32Array.from({ length: 10 }, (_, i) => i / 10), 1);
    await alice.compute(uid, 'seed', 'seq.0', '10', ct);
    expect(await failure(bob.compute(uid, 'seed', 'seq.0', '10', ct))).toEqual({ status: 404, code: 'unknown_uid' });
    for (const f of filesUnder(keysDir)) {
      const text = fs.readFileSync(f).toString('latin1');
      expect(text.includes(ALICE) || text.includes(BOB)).toBe(false);
    }
    expect(JSON.parse(fs.readFileSync(path.join(keysDir, `${uid}.json`), 'utf8')).owner).toMatch(/^[0-9a-f]{16}$/);
  });

  it('HybridFHEModel with serverToken gets the exact simulated results; without it, a 401', async () => {
    const xs = x();
    const withToken = HybridFHEModel.loadClient(new SeedNet(), path.join(modelsDir, 'seed'), { serverUrl: server.url, serverToken: ALICE });
    const y = await withToken.forward(xs);
    expect(Array.from(y.dataSync())).toEqual(expected);
    const without = HybridFHEModel.loadClient(new SeedNet(), path.join(modelsDir, 'seed'), { serverUrl: server.url });
    expect(await failure(without.forward(xs))).toEqual({ status: 401, code: 'unauthorized' });
    // The token is a deployment secret, not part of the saved client artefacts.
    for (const f of filesUnder(path.join(modelsDir, 'seed'))) expect(fs.readFileSync(f).toString('latin1').includes(ALICE)).toBe(false);
    tf.dispose([xs, y]);
  });
});

describe('token configuration', () => {
  it('reads one token per line, skipping blanks and comments, and refuses weak or missing tokens', () => {
    const f = path.join(root, 'tokens.txt');
    fs.writeFileSync(f, `# deployment tokens\n${ALICE}\n\n  ${BOB}  \r\n`);
    expect(readTokenFile(f)).toEqual([ALICE, BOB]);
    fs.writeFileSync(f, '# none\n\n');
    expect(() => readTokenFile(f)).toThrow(/holds no token/);
    expect(() => readTokenFile(path.join(root, 'absent.txt'))).toThrow(/cannot read token file/);
    expect(() => new BearerAuth(['short'])).toThrow(/16 to 4096/);
    expect(() => new BearerAuth(['has a space in it!!'])).toThrow(/without spaces/);
    const auth = new BearerAuth([ALICE]);
    expect(auth.ownerOf(`Bearer ${ALICE}`)).toMatch(/^[0-9a-f]{16}$/);
    expect(() => auth.ownerOf(`Basic ${ALICE}`)).toThrow(/invalid bearer token/);
    expect(() => auth.ownerOf(undefined)).toThrow(/needs a bearer token/);
  });
});

describe('token rotation', () => {
  const CAROL = 'carol-00112233445566778899';
  const status = async (url: string, token: string) =>
    (await fetch(`${url}/list_models`, { headers: { authorization: `Bearer ${token}` } })).status;

  it('reloadTokens re-reads the token file: retired tokens get 401, new ones work, a bad file changes nothing', async () => {
    const file = path.join(root, 'rotate.txt');
    fs.writeFileSync(file, `${ALICE}\n`);
    const s = await startServer({ modelsDir, keysDir: path.join(root, 'keys-rotate'), tokenFile: file });
    try {
      expect(await status(s.url, ALICE)).toBe(200);
      expect(await status(s.url, CAROL)).toBe(401);
      fs.writeFileSync(file, `# rotated\n${CAROL}\n`);
      expect(s.app.reloadTokens!()).toBe(1);
      expect(await status(s.url, ALICE)).toBe(401);
      expect(await status(s.url, CAROL)).toBe(200);
      fs.writeFileSync(file, 'short\n');
      expect(() => s.app.reloadTokens!()).toThrow(/16 to 4096/);
      expect(await status(s.url, CAROL)).toBe(200);
    } finally {
      await s.app.close();
    }
    await expect(startServer({ modelsDir, keysDir: path.join(root, 'keys-both'), tokenFile: file, apiTokens: [ALICE] })).rejects.toThrow(/not both/);
  });

  it('fhenet serve --token-file reloads the file on SIGHUP', async () => {
    const file = path.join(root, 'rotate-cli.txt');
    fs.writeFileSync(file, `${ALICE}\n`);
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--models', modelsDir, '--keys', path.join(root, 'keys-cli'), '--port', '0', '--token-file', file], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    child.stdout.on('data', (b: Buffer) => (log += b.toString()));
    child.stderr.on('data', (b: Buffer) => (log += b.toString()));
    const waitFor = async (re: RegExp) => {
      for (let i = 0; i < 300 && !re.test(log); i++) await new Promise((r) => setTimeout(r, 100));
      const m = re.exec(log);
      if (!m) throw new Error(`no ${re} in the server log:\n${log}`);
      return m;
    };
    try {
      const url = (await waitFor(/listening at (http:\/\/127\.0\.0\.1:\d+)/))[1]!;
      expect(await status(url, ALICE)).toBe(200);
      fs.writeFileSync(file, `${CAROL}\n`);
      child.kill('SIGHUP');
      await waitFor(/token file reloaded/);
      expect(await status(url, ALICE)).toBe(401);
      expect(await status(url, CAROL)).toBe(200);
      fs.writeFileSync(file, '# nothing\n');
      child.kill('SIGHUP');
      await waitFor(/token file not reloaded/);
      expect(await status(url, CAROL)).toBe(200);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  }, 60_000);
});
