/**
 * The real `fhenet` CLI as a process (bin/fhenet.js, the file `npx fhenet` runs):
 * - `fhenet --help` lists every command and `fhenet serve` serves a hybrid LLM (GLWE backend) without loading any
 *   `@tensorflow` module: command modules import their implementation inside the action (src/cli/main.ts). A preload
 *   (fixtures/record-tensorflow.mjs) records every @tensorflow module the process resolves or requires; the control
 *   (`fhenet generate`, which does load TensorFlow.js) shows the probe sees them.
 * - clients that disconnect mid-upload or before reading the answer (/llm/add_key, /llm/linear) leave the process
 *   running and answering (an unhandled error there would now end it: see the next point).
 * - a fault nothing catches (an unhandled rejection, an uncaught exception; injected by fixtures/inject-fault.mjs on
 *   SIGUSR2) is logged by the server with its message and stack, and the process exits 1, so /health stops answering.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.js';
import { buildHybridLlm } from '../../src/hybrid/hybrid-llm.js';
import { GPT2LMHeadModel } from '../../src/transformers/gpt2/model.js';
import { savePretrained } from '../../src/transformers/gpt2/pretrained.js';
import { tmpDir } from '../hybrid/helpers.js';

const root = tmpDir('serve-process');
const BIN = path.join(import.meta.dirname, '..', '..', 'bin', 'fhenet.js');
const FIXTURES = path.join(import.meta.dirname, 'fixtures');
const modelsDir = path.join(root, 'models');
let remoteLayers: string[] = [];

beforeAll(async () => {
  await initBackend();
  const modelDir = path.join(root, 'tiny');
  savePretrained(new GPT2LMHeadModel({ vocab_size: 64, n_positions: 16, n_embd: 16, n_layer: 1, n_head: 2 }, { seed: 1 }), modelDir);
  remoteLayers = buildHybridLlm(modelDir, modelsDir, { backend: 'glwe', name: 'tiny' }).remote;
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

/** `node [--import preload…] bin/fhenet.js args` with the @tensorflow recorder; its log file. */
function fhenetArgs(args: string[], preloads: string[] = []): { argv: string[]; tfLog: string } {
  const tfLog = path.join(root, `tf-${Math.random().toString(36).slice(2)}.log`);
  const argv = [...['record-tensorflow.mjs', ...preloads].flatMap((p) => ['--import', path.join(FIXTURES, p)]), BIN, ...args];
  return { argv, tfLog };
}

const recorded = (tfLog: string): string[] => fs.readFileSync(tfLog, 'utf8').split('\n').filter(Boolean);

/** Starts `fhenet serve` on a free port; resolves with its URL once it logs that it listens. */
async function startServe(preloads: string[] = [], env: Record<string, string> = {}): Promise<{ child: ChildProcess; url: string; tfLog: string; log: () => string }> {
  const { argv, tfLog } = fhenetArgs(['serve', '--models', modelsDir, '--keys', path.join(root, 'keys'), '--port', '0'], preloads);
  const child = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FHENET_TEST_TF_LOG: tfLog, ...env } });
  let log = '';
  child.stdout!.on('data', (b: Buffer) => (log += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (log += b.toString()));
  for (let i = 0; i < 600 && child.exitCode === null; i++) {
    const m = /listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(log);
    if (m) return { child, url: m[1]!, tfLog, log: () => log };
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`fhenet serve did not start:\n${log}`);
}

const exited = (child: ChildProcess): Promise<number | null> =>
  child.exitCode !== null ? Promise.resolve(child.exitCode) : new Promise((r) => child.once('exit', (code) => r(code)));

describe('fhenet CLI process', () => {
  it('fhenet --help lists every command and loads no @tensorflow module', () => {
    const { argv, tfLog } = fhenetArgs(['--help']);
    const r = spawnSync(process.execPath, argv, { encoding: 'utf8', env: { ...process.env, FHENET_TEST_TF_LOG: tfLog }, timeout: 60_000 });
    expect(r.status).toBe(0);
    for (const c of ['train', 'analyze', 'sweep', 'export', 'inspect', 'compile', 'execute', 'serve', 'hybrid', 'demo', 'data', 'generate', 'eval-lm', 'hybrid-llm', 'worker']) {
      expect(r.stdout).toMatch(new RegExp(`^  ${c} `, 'm'));
    }
    expect(recorded(tfLog)).toEqual([]);
  }, 60_000);

  it('fhenet serve --help shows the options defined up front', () => {
    const { argv, tfLog } = fhenetArgs(['serve', '--help']);
    const r = spawnSync(process.execPath, argv, { encoding: 'utf8', env: { ...process.env, FHENET_TEST_TF_LOG: tfLog }, timeout: 60_000 });
    expect(r.stdout).toMatch(/--max-compute-per-uid <n>/);
    expect(recorded(tfLog)).toEqual([]);
  }, 60_000);

  it('fhenet serve answers the LLM routes (GLWE) and loads no @tensorflow module', async () => {
    const s = await startServe();
    try {
      expect((await fetch(`${s.url}/health`)).status).toBe(200);
      const layers = (await (await fetch(`${s.url}/llm/list_layers?model_name=tiny`)).json()) as { layers: { name: string }[] };
      expect(layers.layers.map((l) => l.name).sort()).toEqual([...remoteLayers].sort());
      expect(remoteLayers.length).toBeGreaterThanOrEqual(5);
      // a key upload runs the GLWE key parser: garbage is a 400, not a crash
      const bad = await fetch(`${s.url}/llm/add_key?model_name=tiny`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: Buffer.alloc(1000, 7) });
      expect(bad.status).toBe(400);
    } finally {
      s.child.kill('SIGTERM');
      expect(await exited(s.child)).toBe(0);
    }
    expect(recorded(s.tfLog)).toEqual([]);
  }, 90_000);

  it('fhenet serve survives clients that disconnect mid-upload or before the answer on the /llm routes', async () => {
    const s = await startServe();
    const port = Number(new URL(s.url).port);
    /** Sends a request head and `sent` of `declared` body bytes, optionally waits, then drops the connection. */
    const drop = (route: string, declared: number, sent: number, waitMs: number) =>
      new Promise<void>((resolve, reject) => {
        const sock = net.connect(port, '127.0.0.1', () => {
          sock.write(`POST ${route} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: ${declared}\r\n\r\n`);
          sock.write(Buffer.alloc(sent, 1), () => setTimeout(() => (sock.destroy(), resolve()), waitMs));
        });
        sock.on('error', reject);
      });
    const uid = '00000000-0000-4000-8000-000000000000';
    try {
      await drop('/llm/add_key?model_name=tiny', 1_000_000, 100_000, 0); // mid-upload
      await drop('/llm/add_key?model_name=tiny', 1000, 1000, 0); // whole (bad) key, gone before the 400
      await drop(`/llm/linear?uid=${uid}&model_name=tiny&layer=lm_head&tokens=1`, 50_000, 10_000, 0);
      await drop(`/llm/linear?uid=${uid}&model_name=tiny&layer=lm_head&tokens=1`, 1000, 1000, 0);
      await drop('/add_key?model_name=none&module_name=x&input_shape=1', 1000, 500, 50);
      await new Promise((r) => setTimeout(r, 300));
      expect(s.child.exitCode).toBeNull();
      expect((await fetch(`${s.url}/health`)).status).toBe(200);
      expect((await fetch(`${s.url}/llm/list_layers?model_name=tiny`)).status).toBe(200);
    } finally {
      s.child.kill('SIGTERM');
      expect(await exited(s.child)).toBe(0);
    }
    expect(s.log()).not.toMatch(/"level":60/);
  }, 90_000);

  it('control: the probe records tfjs in a command that loads it (fhenet generate)', () => {
    const { argv, tfLog } = fhenetArgs(['generate', '--model', path.join(root, 'no-such-model'), '--prompt', 'x']);
    const r = spawnSync(process.execPath, argv, { encoding: 'utf8', env: { ...process.env, FHENET_TEST_TF_LOG: tfLog, FHENET_BACKEND: 'cpu' }, timeout: 60_000 });
    expect(r.status).not.toBe(0);
    expect(recorded(tfLog).some((l) => l.includes('@tensorflow/tfjs-core'))).toBe(true);
  }, 60_000);

  for (const fault of ['rejection', 'exception'] as const) {
    it(`fhenet serve logs an unhandled ${fault} with its stack and exits 1; /health stops answering`, async () => {
      const s = await startServe(['inject-fault.mjs'], { FHENET_TEST_FAULT: fault });
      expect((await fetch(`${s.url}/health`)).status).toBe(200);
      s.child.kill('SIGUSR2');
      const code = await Promise.race([exited(s.child), new Promise((r) => setTimeout(() => r('still running'), 20_000))]);
      if (code === 'still running') s.child.kill('SIGKILL');
      expect(code).toBe(1);
      const fatal = s
        .log()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { level: number; msg: string; err?: { message: string; stack: string } })
        .find((l) => l.level === 60);
      expect(fatal?.msg).toMatch(new RegExp(`^(uncaught exception|unhandled promise rejection): injected fault: ${fault}; exiting$`));
      expect(fatal?.err?.stack).toMatch(/inject-fault\.mjs:\d+/);
      await expect(fetch(`${s.url}/health`)).rejects.toThrow();
    }, 90_000);
  }
});
