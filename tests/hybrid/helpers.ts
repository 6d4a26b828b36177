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
import { fromFloat32 } from '../../src/util/safetensors-file.js';

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

/** Every `w`-byte window (stride w/2) of `values` in F32, F16 and BF16, row-major and transposed [rows, cols]. */
export function weightWindows(values: Float32Array, rows: number, cols: number, w = 8): Uint8Array[] {
  const t = new Float32Array(values.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = values[r * cols + c]!;
  const out: Uint8Array[] = [];
  for (const layout of [values, t]) {
    for (const dtype of ['F32', 'F16', 'BF16'] as const) {
      const bytes = fromFloat32(layout, dtype);
      for (let i = 0; i + w <= bytes.length; i += w / 2) out.push(bytes.subarray(i, i + w));
    }
  }
  return out;
}

/** Every 8-byte window, at every offset, of the given files: `has(w)` tells whether 8 bytes occur anywhere in them. */
export class ByteWindows {
  private readonly present = new Set<bigint>();

  constructor(files: readonly string[]) {
    for (const f of files) {
      const c = new Uint8Array(fs.readFileSync(f));
      const dv = new DataView(c.buffer, c.byteOffset, c.byteLength);
      for (let i = 0; i + 8 <= c.length; i++) this.present.add(dv.getBigUint64(i, true));
    }
  }

  has(w: Uint8Array): boolean {
    return this.present.has(new DataView(w.buffer, w.byteOffset, 8).getBigUint64(0, true));
  }
}
