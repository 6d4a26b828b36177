/**
 * The remote linear layers' bias is added on the server (dynamic-quant.ts): the client sends its per-token scales
 * s_x, the server adds round(b / (s_x · s_w)) in accumulator units, the client dequantizes y = s_x · s_w · acc'.
 * Both backends (simulate, glwe) give the same integers; tokens of all-zero or tiny activations are held at the
 * layer's tokenScaleFloor so the bias stays within its budget; scales a client may not send are refused with 400.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.js';
import { addBias, biasInAccumulatorUnits, biasPlan, dequantizeOutput, integerMatVec, quantizeLinear, quantizeTokens } from '../../src/hybrid/dynamic-quant.js';
import { type ClientLayer, layerTag, linearClientBackend, linearServerBackend } from '../../src/hybrid/linear-backend.js';
import { HybridError } from '../../src/hybrid/errors.js';
import { Rng } from '../../src/util/rng.js';

beforeAll(async () => {
  await initBackend();
});

const OUT = 12;
const IN = 40;

/** A layer with weights ~ N(0, 0.05) and biases up to ±2 (large against the tiny tokens below). */
function layer(seed: number) {
  const r = new Rng(seed);
  const w = Float32Array.from({ length: OUT * IN }, () => r.normal() * 0.05);
  const b = Float32Array.from({ length: OUT }, () => r.uniform(-2, 2));
  return { w, b, q: quantizeLinear(w, OUT, IN, b) };
}

/** Tokens: ordinary activations, all zeros, tiny (1e-7) activations, a single tiny spike. */
function tokens(seed: number): Float32Array {
  const r = new Rng(seed);
  const x = new Float32Array(4 * IN);
  for (let j = 0; j < IN; j++) x[j] = r.normal() * 3;
  for (let j = 0; j < IN; j++) x[2 * IN + j] = r.normal() * 1e-7;
  x[3 * IN + 5] = 1e-9;
  return x;
}

function floatLinear(w: Float32Array, b: Float32Array, x: Float32Array, n: number): Float64Array {
  const y = new Float64Array(n * OUT);
  for (let t = 0; t < n; t++) for (let c = 0; c < OUT; c++) {
    let s = b[c]!;
    for (let j = 0; j < IN; j++) s += w[c * IN + j]! * x[t * IN + j]!;
    y[t * OUT + c] = s;
  }
  return y;
}

describe('bias on the server', () => {
  it('the token scale floor keeps the bias within budget; outputs are within the quantization bound of float', () => {
    const { w, b, q } = layer(1);
    const plan = biasPlan(q);
    expect(plan.tokenScaleFloor).toBeGreaterThan(0);
    expect(Math.fround(plan.tokenScaleFloor)).toBe(plan.tokenScaleFloor);
    const x = tokens(2);
    const qt = quantizeTokens(x, 4, IN, plan.tokenScaleFloor);
    // the tiny tokens are held at the floor; the ordinary one is not; the all-zero token keeps scale 1 (above it)
    expect(plan.tokenScaleFloor).toBeLessThan(1);
    expect(qt.scales[0]).toBeGreaterThan(plan.tokenScaleFloor);
    expect(qt.scales[1]).toBe(1);
    for (const t of [2, 3]) expect(qt.scales[t]).toBe(plan.tokenScaleFloor);
    const bias = biasInAccumulatorUnits(q, plan, qt.scales);
    expect(Math.max(...bias.map(Math.abs))).toBeLessThanOrEqual(plan.maxAbsBias);
    // without the floor a tiny token's bias would overflow the budget (that is what the floor is for)
    const unfloored = quantizeTokens(x, 4, IN);
    expect(() => biasInAccumulatorUnits(q, { ...plan, tokenScaleFloor: 0 }, unfloored.scales)).toThrow(/overflows the layer's budget/);
    const y = dequantizeOutput(addBias(integerMatVec(q, qt.values, 4), bias), qt.scales, q.scales);
    const ref = floatLinear(w, b, x, 4);
    for (let t = 0; t < 4; t++) {
      for (let c = 0; c < OUT; c++) {
        // per element |x − s_x·x_c| ≤ s_x/2, per weight |W − s_w·w| ≤ s_w/2, bias rounding ≤ s_x·s_w/2
        let l1w = 0;
        let l1x = 0;
        for (let j = 0; j < IN; j++) {
          l1w += Math.abs(w[c * IN + j]!);
          l1x += Math.abs(x[t * IN + j]!) + qt.scales[t]!;
        }
        const bound = (qt.scales[t]! / 2) * l1w + (q.scales[c]! / 2) * l1x + (qt.scales[t]! * q.scales[c]!) / 2 + 1e-5 * (Math.abs(ref[t * OUT + c]!) + 1);
        expect(Math.abs(y[t * OUT + c]! - ref[t * OUT + c]!), `token ${t} output ${c}`).toBeLessThanOrEqual(bound);
      }
    }
    // the all-zero token's output is the bias, to within half an accumulator unit
    for (let c = 0; c < OUT; c++) expect(Math.abs(y[OUT + c]! - b[c]!)).toBeLessThanOrEqual(qt.scales[1]! * q.scales[c]! * 0.51);
  });

  it('scales a client may not send: non-finite, non-positive, below the floor → HybridError 400 bad_scale', () => {
    const { q } = layer(3);
    const plan = biasPlan(q);
    for (const s of [Number.NaN, Number.POSITIVE_INFINITY, 0, -1, plan.tokenScaleFloor / 2]) {
      const e = (() => {
        try {
          biasInAccumulatorUnits(q, plan, [1, s]);
        } catch (err) {
          return err;
        }
      })();
      expect(e, String(s)).toBeInstanceOf(HybridError);
      expect([(e as HybridError).statusCode, (e as HybridError).code]).toEqual([400, 'bad_scale']);
    }
  });

  it('simulate and glwe backends add the same bias on the server; bad scales in the frame are refused', async () => {
    const { q } = layer(4);
    const x = tokens(5);
    const tag = layerTag('m', 'fc');
    const results: Float64Array[] = [];
    for (const name of ['simulate', 'glwe']) {
      const server = linearServerBackend(name);
      const keys = await linearClientBackend(name).generateKeys();
      const key = keys.localKey && server.loadLocalKey ? server.loadLocalKey(keys.localKey()) : server.parseKey(keys.evaluationKey());
      const prepared = server.prepare(q);
      const spec: ClientLayer = { inFeatures: IN, outFeatures: OUT, info: server.clientInfo!(q) };
      const floor = spec.info!.tokenScaleFloor as number;
      expect(floor).toBe(biasPlan(q).tokenScaleFloor);
      const qt = quantizeTokens(x, 4, IN, floor);
      const acc = await keys.decrypt(await server.matVec(key, prepared, q, await keys.encrypt(qt.values, qt.scales, 4, spec, tag), tag), 4, spec, tag);
      results.push(acc);
      const exact = addBias(integerMatVec(q, qt.values, 4), biasInAccumulatorUnits(q, biasPlan(q), qt.scales));
      expect(Array.from(acc), name).toEqual(Array.from(exact));
      for (const bad of [Number.NaN, 0, -0.5, floor / 4]) {
        const scales = Float32Array.from(qt.scales);
        scales[2] = bad;
        const ct = await keys.encrypt(qt.values, scales, 4, spec, tag);
        const e = await Promise.resolve()
          .then(() => server.matVec(key, prepared, q, ct, tag))
          .catch((err: unknown) => err);
        expect(e, `${name} ${bad}`).toBeInstanceOf(HybridError);
        expect((e as HybridError).statusCode).toBe(400);
      }
      keys.dispose?.();
    }
    expect(Array.from(results[1]!)).toEqual(Array.from(results[0]!));
  }, 60_000);
});
