/**
 * Every public entry point that takes bytes accepts a Node `Buffer` as `fs.readFileSync` returns it: often a view
 * into a shared pool at a non-zero offset, whose `.slice()` is a view too (issue 22: `deserializeCircuit` and
 * `FHEModelServer.fromBytes` decoded another file's bytes as weights). Each input is given three ways — a fresh
 * `Uint8Array`, a pooled `readFileSync` Buffer of a small file, and a Buffer view at an odd offset into a larger
 * allocation filled with other bytes — and must decode to the same thing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/backend/index.js';
import { manualSeed } from '../../src/nn/init.js';
import { Linear, ReLU, Sequential } from '../../src/nn/layers.js';
import { decodeTensors, encodeTensors } from '../../src/nn/checkpoint.js';
import { decodeSafetensors, encodeSafetensors } from '../../src/util/safetensors.js';
import { deserializeCircuit } from '../../src/compiler/circuit.js';
import { FHEModelClient, FHEModelServer, parseClientArtefact } from '../../src/hybrid/deployment.js';
import { HybridFHEModel } from '../../src/hybrid/hybrid-model.js';
import { decodePackedModule, encodePackedModule, unpackInts, packInts } from '../../src/quant/packed-checkpoint.js';
import { QuantIdentity, QuantLinear } from '../../src/quant/layers.js';
import { importModel } from '../../src/onnx/import.js';
import { exportQonnx } from '../../src/onnx/export.js';
import { moduleToGraph } from '../../src/export/to-graph.js';
import { decodeSimCiphertext, decodeSimKey } from '../../src/hybrid/backend.js';
import { decodeTfheCiphertexts, decodeTfheKey, encodeTfheCiphertexts, encodeTfheKey } from '../../src/hybrid/tfhe-backend.js';
import { parseCompressedCiphertext, serializeCompressedCiphertextFields } from '../../src/tfhe/layouts.js';
import { SeedNet } from '../hybrid/helpers.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhenet-buffers-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The same bytes as a fresh Uint8Array, a readFileSync Buffer, and a Buffer view at an odd offset among other bytes. */
function threeWays(bytes: Uint8Array, name: string): [string, Uint8Array][] {
  const file = path.join(dir, name);
  fs.writeFileSync(file, bytes);
  const read = fs.readFileSync(file);
  const big = Buffer.alloc(bytes.length + 4099, 0xa5);
  big.set(bytes, 13);
  const view = big.subarray(13, 13 + bytes.length);
  expect(view.byteOffset).toBe(13);
  return [
    ['Uint8Array', Uint8Array.from(bytes)],
    [`readFileSync (byteOffset ${read.byteOffset})`, read],
    ['Buffer at offset 13', view],
  ];
}

/** Values only: typed arrays and Buffers (a decoder may return views of its input) as plain arrays. */
function plain(x: unknown): unknown {
  if (ArrayBuffer.isView(x)) return Array.from(x as unknown as ArrayLike<number>, (v) => (typeof v === 'bigint' ? String(v) : v));
  if (x instanceof Map) return [...x].map(([k, v]) => [k, plain(v)]);
  if (Array.isArray(x)) return x.map(plain);
  if (x && typeof x === 'object') return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, plain(v)]));
  return x;
}

/** Decodes each way and expects the same values as from the fresh copy. */
function sameEachWay<T>(bytes: Uint8Array, name: string, decode: (b: Uint8Array) => T): void {
  const [[, fresh], ...others] = threeWays(bytes, name);
  const want = plain(decode(fresh!));
  for (const [how, b] of others) expect(plain(decode(b)), how).toEqual(want);
}

let modelDir = '';
beforeAll(async () => {
  await initBackend();
  manualSeed(3);
  const h = new HybridFHEModel(new SeedNet(), ['seq.0'], { modelName: 'seed' });
  h.compileModel(tf.randomUniform([50, 10], -1, 1, 'float32', 4), { nBits: 6 });
  modelDir = path.join(dir, 'models', 'seed');
  h.saveAndClearPrivateInfo(modelDir);
});

describe('byte inputs as Node Buffers', () => {
  it('a small file read with readFileSync is a pooled view (what the issue hit)', () => {
    fs.writeFileSync(path.join(dir, 'small'), new Uint8Array(100));
    fs.readFileSync(path.join(dir, 'small')); // take a pool slot first
    expect(fs.readFileSync(path.join(dir, 'small')).byteOffset).toBeGreaterThan(0);
  });

  it('safetensors: decodeSafetensors and decodeTensors', () => {
    const tensors = new Map([
      ['w', { dtype: 'F32' as const, shape: [2, 3], data: Float32Array.from([-4, 1, -8, 0.5, 2, 3]) }],
      ['b', { dtype: 'I32' as const, shape: [3], data: Int32Array.from([7, -9, 11]) }],
    ]);
    const bytes = encodeSafetensors(tensors, { a: 'b' });
    sameEachWay(bytes, 'small.safetensors', (b) => decodeSafetensors(b));
    expect(Array.from(decodeSafetensors(threeWays(bytes, 's2')[2]![1]).tensors.get('w')!.data as Float32Array)).toEqual([-4, 1, -8, 0.5, 2, 3]);
    const tfBytes = encodeTensors(new Map([['x', tf.tensor([-4, 1, -8])]]));
    sameEachWay(tfBytes, 'tf.safetensors', (b) => Array.from(decodeTensors(b).tensors.get('x')!.dataSync()));
  });

  it('circuits and deployment artefacts: deserializeCircuit, FHEModelServer.fromBytes, parseClientArtefact, FHEModelClient.fromArtefact', () => {
    const serverBytes = new Uint8Array(fs.readFileSync(path.join(modelDir, 'seq.0', '10', 'server.fhe')));
    const clientBytes = new Uint8Array(fs.readFileSync(path.join(modelDir, 'seq.0', '10', 'client.json')));
    sameEachWay(serverBytes, 'server.fhe', (b) => deserializeCircuit(b));
    // the server built from a Buffer computes what the one built from fresh bytes computes
    const client = FHEModelClient.fromArtefact(clientBytes);
    client.generatePrivateAndEvaluationKeys();
    const ct = client.quantizeEncryptSerialize(Float32Array.from({ length: 20 }, (_, i) => Math.sin(i)), 2);
    const key = client.getSerializedEvaluationKeys();
    sameEachWay(serverBytes, 'server2.fhe', (b) => Array.from(client.deserializeDecryptDequantize(FHEModelServer.fromBytes(b).run(ct, key), 2).ints));
    sameEachWay(clientBytes, 'client.json', (b) => parseClientArtefact(b));
    sameEachWay(clientBytes, 'client2.json', (b) => FHEModelClient.fromArtefact(b).artefact);
    // the crypto frames
    sameEachWay(ct, 'ct.bin', (b) => decodeSimCiphertext(b));
    sameEachWay(key, 'key.bin', (b) => decodeSimKey(b));
    const tfheKey = encodeTfheKey(new Uint8Array(16).fill(1), '0123456789abcdef', 'PARAM_X', Uint8Array.from({ length: 99 }, (_, i) => i));
    sameEachWay(tfheKey, 'tkey.bin', (b) => decodeTfheKey(b));
    const tfheCts = encodeTfheCiphertexts(1, new Uint8Array(16).fill(2), '0123456789abcdef', [Uint8Array.from([1, 2, 3]), Uint8Array.from([4, 5])], 1);
    sameEachWay(tfheCts, 'tct.bin', (b) => decodeTfheCiphertexts(b));
    const compressed = serializeCompressedCiphertextFields({
      body: Uint32Array.from([0x12345678, 0x9abcdef0]),
      lweSize: 2049,
      seed: { key: Uint8Array.from({ length: 16 }, (_, i) => i), aesIndex: 5n, byteIndex: 3 },
      degree: 3,
      messageModulus: 4,
      carryModulus: 4,
      atomicPattern: { kind: 'standard', pbsOrder: 'keyswitch-bootstrap' },
      noiseLevel: 1,
    });
    sameEachWay(compressed, 'cct.bin', (b) => parseCompressedCiphertext(b));
  });

  it('integer-packed checkpoints and ONNX models', () => {
    sameEachWay(packInts([-3, 2, 0, 1, -4], 3, -4), 'packed.bin', (b) => unpackInts(b, 5, 3, -4));
    manualSeed(4);
    const net = new Sequential(new QuantIdentity({ bitWidth: 4 }), new QuantLinear(6, 3, { weightBitWidth: 3 }));
    net.call(tf.randomUniform([8, 6], -1, 1, 'float32', 1));
    const packed = encodePackedModule(net);
    const readBack = (b: Uint8Array) => {
      const m = new Sequential(new QuantIdentity({ bitWidth: 4 }), new QuantLinear(6, 3, { weightBitWidth: 3 }));
      decodePackedModule(b, m);
      return [...m.stateDict()].map(([k, t]) => [k, Array.from(t.dataSync())]);
    };
    sameEachWay(packed, 'net.fhpk', readBack);
    const onnx = exportQonnx(moduleToGraph(new Sequential(new Linear(4, 2), new ReLU()), [4]));
    sameEachWay(onnx, 'net.onnx', (b) => importModel(b));
  });
});
