import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { Linear, ReLU, Sequential } from '../../src/nn/layers.js';
import { Module } from '../../src/nn/module.js';
import type { Activation } from '../../src/nn/quant-tensor.js';
import { buildServer, type ServeOptions } from '../../src/hybrid/server/app.js';

/** The seed example: Linear(10,10) → ReLU → Linear(10,10), remote module `seq.0`. */
export class SeedNet extends Module {
  readonly seq = this.addModule('seq', new Sequential(new Linear(10, 10), new ReLU(), new Linear(10, 10)));
  forward(x: Activation): Activation {
    return this.seq.call(x);
  }

  override forwardAsync(x: Activation): Promise<Activation> {
    return this.seq.callAsync(x);
  }
}

/** Seed net with `keep` largest weights per neuron of seq.0 (the others zero): 2-bit PTQ then fits 4-bit accumulators (the 2_2 TFHE set). */
export function prunedSeed(keep: number): SeedNet {
  const net = new SeedNet();
  const lin = [...net.namedModules()].find(([n]) => n === 'seq.0')![1] as unknown as { weight: tf.Variable };
  const [o, i] = lin.weight.shape as [number, number];
  const w = Float32Array.from(lin.weight.dataSync() as Float32Array);
  for (let r = 0; r < o; r++) {
    const order = Array.from({ length: i }, (_, k) => k).sort((a, b) => Math.abs(w[r * i + b]!) - Math.abs(w[r * i + a]!));
    for (const k of order.slice(keep)) w[r * i + k] = 0;
  }
  lin.weight.assign(tf.tensor(w, [o, i]));
  return net;
}

export function tmpDir(tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `fhenet-hybrid-${tag}-`));
}

export async function startServer(opts: Partial<ServeOptions> & { modelsDir: string; keysDir: string }): Promise<{ app: FastifyInstance; url: string; port: number }> {
  const app = await buildServer({ logger: false, ...opts });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const port = (app.server.address() as AddressInfo).port;
  return { app, url: `http://127.0.0.1:${port}`, port };
}

/** Every file under `dir`, recursively. */
export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p));
    else out.push(p);
  }
  return out;
}

export function indexOfBytes(hay: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}
