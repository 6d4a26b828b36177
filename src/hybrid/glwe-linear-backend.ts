/**
 * The `glwe` linear backend: remote linear layers on fhenet's packed GLWE engine (src/glwe, docs/glwe.md) —
 * real encryption. Per token the client encrypts its centred 8-bit integers x_c (|x| ≤ 255) as seeded GLWEs
 * (`encryptVector`); the server multiplies by the layer's int8 weights, transformed once per layer for every client
 * (`transformWeights`), with the client's packing key prepared once per client (`prepareEvaluationKey`), and returns
 * packed, modulus-switched results (`serverMatVec`), which only the client decrypts (`decryptVector`): the exact
 * integer accumulators, within the engine's documented error bound.
 *
 * The server adds the layer's bias, round(b / (s_x · s_w)) per token (dynamic-quant.ts), inside the packed product
 * (`serverMatVec`'s bias), with the per-token scales s_x the client sends in clear.
 *
 * Public per layer (`clientInfo`, in the client's files): `messageBits`, the plaintext width the layer's worst-case
 * |acc| = max_row Σ|w| · 255 plus the bias budget needs — the client encrypts at that scale (a few bits about the
 * weights' row norms) — and `tokenScaleFloor` (dynamic-quant.ts).
 *
 * Wire frame around the engine's own versioned formats (little-endian): "FHLG" magic u32, version u8 = 2,
 * kind u8 (1 input, 2 output), reserved u16, layer tag u8[8], tokens u32, then (input frames only) f32[tokens]
 * token scales, then per token u32 length + the engine's bytes. Lengths are checked against the frame before any
 * parsing; the engine checks each ciphertext against the layer's layout. (Version 1 had no scales.) tfjs-free.
 */
import { availableParallelism } from 'node:os';
import {
  GLWE_PARAMS_2048,
  GlweError,
  type EvaluationKey,
  type PreparedEvaluationKey,
  type TransformedWeights,
  decryptPhases,
  decryptVector,
  deserializeEvaluationKey,
  deserializeInputCiphertext,
  deserializeResult,
  encryptVector,
  generateKeys,
  planMatVec,
  prepareEvaluationKey,
  serializeEvaluationKey,
  serializeInputCiphertext,
  serializeResult,
  serverMatVec,
  transformWeights,
} from '../glwe/index.js';
import { messageBitsFor } from '../glwe/layout.js';
import { HybridError } from './errors.js';
import { type BiasPlan, INPUT_LEVELS, biasInAccumulatorUnits, biasPlan, publishedBiasInfo } from './dynamic-quant.js';
import type { ClientLayer, LinearClientBackend, LinearServerBackend, ServerLayer } from './linear-backend.js';

const PARAMS = GLWE_PARAMS_2048;
const MAGIC = 0x474c4846; // "FHLG"
const VERSION = 2;
const HEADER = 20;

function frame(kind: 1 | 2, tag: Uint8Array, parts: Uint8Array[], tokenScales?: Float32Array): Uint8Array {
  const scaleBytes = kind === 1 ? 4 * parts.length : 0;
  const out = new Uint8Array(HEADER + scaleBytes + parts.reduce((a, p) => a + 4 + p.length, 0));
  const dv = new DataView(out.buffer);
  dv.setUint32(0, MAGIC, true);
  out[4] = VERSION;
  out[5] = kind;
  out.set(tag, 8);
  dv.setUint32(16, parts.length, true);
  if (kind === 1) for (let t = 0; t < parts.length; t++) dv.setFloat32(HEADER + 4 * t, tokenScales![t]!, true);
  let off = HEADER + scaleBytes;
  for (const p of parts) {
    dv.setUint32(off, p.length, true);
    out.set(p, off + 4);
    off += 4 + p.length;
  }
  return out;
}

function unframe(bytes: Uint8Array, kind: 1 | 2, tag: Uint8Array, tokens: number | undefined, what: string, status: number, code: string): { parts: Uint8Array[]; tokenScales: Float32Array } {
  const bad = (m: string) => new HybridError(`${what}: ${m}`, status, code);
  if (bytes.length < HEADER) throw bad(`${bytes.length} bytes is shorter than the ${HEADER}-byte header`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dv.getUint32(0, true) !== MAGIC) throw bad('not a GLWE linear frame (bad magic)');
  if (bytes[4] !== VERSION) throw bad(`frame version ${bytes[4]} is not ${VERSION}`);
  if (bytes[5] !== kind) throw bad(kind === 1 ? 'not an input frame' : 'not an output frame');
  if (!bytes.subarray(8, 16).every((v, i) => v === tag[i])) throw bad('the frame is for another layer');
  const n = dv.getUint32(16, true);
  if (n < 1 || (tokens !== undefined && n !== tokens)) throw bad(`${n} tokens, expected ${tokens ?? 'at least 1'}`);
  const scaleBytes = kind === 1 ? 4 * n : 0;
  if (HEADER + scaleBytes + 4 * n > bytes.length) throw bad(`${bytes.length} bytes cannot hold ${n} tokens`);
  const tokenScales = new Float32Array(kind === 1 ? n : 0);
  for (let t = 0; t < tokenScales.length; t++) tokenScales[t] = dv.getFloat32(HEADER + 4 * t, true);
  const parts: Uint8Array[] = [];
  let off = HEADER + scaleBytes;
  for (let i = 0; i < n; i++) {
    if (off + 4 > bytes.length) throw bad(`truncated at token ${i}`);
    const len = dv.getUint32(off, true);
    if (off + 4 + len > bytes.length) throw bad(`token ${i} declares ${len} bytes, past the end of the frame`);
    parts.push(bytes.subarray(off + 4, off + 4 + len));
    off += 4 + len;
  }
  if (off !== bytes.length) throw bad(`${bytes.length - off} bytes after the last token`);
  return { parts, tokenScales };
}

/** The layer's worst-case plaintext width, bias budget included (public: the client encrypts at that scale). */
function messageBitsOf(layer: ServerLayer, plan: BiasPlan): number {
  let worst = 0;
  for (let o = 0; o < layer.outFeatures; o++) {
    let s = 0;
    for (let i = 0; i < layer.inFeatures; i++) s += Math.abs(layer.weights[o * layer.inFeatures + i]!);
    if (s > worst) worst = s;
  }
  return messageBitsFor(worst * INPUT_LEVELS + plan.maxAbsBias);
}

function layoutOf(layer: ClientLayer) {
  const bits = layer.info?.messageBits;
  if (typeof bits !== 'number') throw new HybridError('the client files lack the GLWE layer info (messageBits); write them again with saveAndClearPrivateInfo', 400, 'bad_artefact');
  return planMatVec(PARAMS, layer.inFeatures, layer.outFeatures, bits, INPUT_LEVELS);
}

/** Engine errors on bytes from the other party are that party's fault: 4xx (server side) or a bad answer (client). */
function asHybrid<T>(fn: () => T, status: number, code: string, what: string): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof GlweError) throw new HybridError(`${what}: ${e.message}`, status, code);
    throw e;
  }
}

function decryptAll(bytes: Uint8Array, tokens: number, layer: ClientLayer, tag: Uint8Array, one: (part: Uint8Array) => ArrayLike<number>): Float64Array {
  const { parts } = unframe(bytes, 2, tag, tokens, 'server answer', 502, 'bad_answer');
  const acc = new Float64Array(tokens * layer.outFeatures);
  parts.forEach((p, t) => acc.set(asHybrid(() => one(p), 502, 'bad_answer', 'server answer'), t * layer.outFeatures));
  return acc;
}

export const glweLinearClient: LinearClientBackend = {
  name: 'glwe',
  generateKeys() {
    let { clientKey, evaluationKey } = generateKeys(PARAMS) as { clientKey: ReturnType<typeof generateKeys>['clientKey'] | undefined; evaluationKey: EvaluationKey | undefined };
    let wire: Uint8Array | undefined;
    const key = () => {
      if (!clientKey) throw new HybridError('the GLWE client key was disposed', 500, 'internal');
      return clientKey;
    };
    return {
      evaluationKey: () => (wire ??= serializeEvaluationKey(evaluationKey!)),
      localKey: () => evaluationKey,
      encrypt: (values, tokenScales, tokens, layer, tag) => {
        const layout = layoutOf(layer);
        const parts: Uint8Array[] = [];
        for (let t = 0; t < tokens; t++) parts.push(serializeInputCiphertext(encryptVector(key(), values.subarray(t * layer.inFeatures, (t + 1) * layer.inFeatures), layout)));
        return frame(1, tag, parts, tokenScales);
      },
      decrypt: (bytes, tokens, layer, tag) => decryptAll(bytes, tokens, layer, tag, (p) => decryptVector(key(), deserializeResult(p, layer.outFeatures))),
      phases: (bytes, tokens, layer, tag) => decryptAll(bytes, tokens, layer, tag, (p) => decryptPhases(key(), deserializeResult(p, layer.outFeatures))),
      dispose: () => {
        clientKey = undefined;
        evaluationKey = undefined;
      },
    };
  },
};

interface Prepared {
  plan: BiasPlan;
  tw: TransformedWeights;
}

export const glweLinearServer: LinearServerBackend = {
  name: 'glwe',
  prepare: (layer): Prepared => {
    const plan = biasPlan(layer);
    return { plan, tw: transformWeights(PARAMS, layer.weights, layer.outFeatures, layer.inFeatures, { inputBound: INPUT_LEVELS, maxAbsBias: plan.maxAbsBias }) };
  },
  clientInfo: (layer) => {
    const plan = biasPlan(layer);
    return { params: PARAMS.name, messageBits: messageBitsOf(layer, plan), ...publishedBiasInfo(plan) };
  },
  parseKey: (bytes) => asHybrid(() => prepareEvaluationKey(deserializeEvaluationKey(bytes)), 400, 'bad_key', 'evaluation key'),
  loadLocalKey: (key) => prepareEvaluationKey(key as EvaluationKey),
  keyMemoryBytes: (key) => (key as PreparedEvaluationKey).spectra.byteLength,
  async matVec(key, prepared, layer, bytes, tag, tokens) {
    const { tw, plan } = prepared as Prepared;
    const { parts, tokenScales } = unframe(bytes, 1, tag, tokens, 'ciphertext', 400, 'bad_ciphertext');
    const bias = biasInAccumulatorUnits(layer, plan, tokenScales);
    const threads = Math.max(1, availableParallelism());
    const m = layer.outFeatures;
    const out: Uint8Array[] = [];
    for (let t = 0; t < parts.length; t++) {
      // One token at a time, yielding between them: a long request (a 128-token prompt through lm_head takes minutes
      // on a busy machine) must not hold the event loop, or health checks and other clients wait for all of it.
      if (t > 0) await new Promise<void>((r) => setImmediate(r));
      out.push(
        asHybrid(
          () => serializeResult(serverMatVec(key as PreparedEvaluationKey, tw, deserializeInputCiphertext(parts[t]!, tw.layout), { threads, bias: bias.subarray(t * m, (t + 1) * m) })),
          400,
          'bad_ciphertext',
          `ciphertext for ${layer.outFeatures}×${layer.inFeatures}`,
        ),
      );
    }
    return frame(2, tag, out);
  },
};
