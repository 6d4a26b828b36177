/**
 * Fuzz: a few thousand seeded mutations of the fixture files. Each is imported and, when that succeeds, run on
 * zeros. The only acceptable failures are fhenet's typed ONNX errors; no crash, hang or runaway allocation.
 */
import { describe, expect, it } from 'vitest';
import { allocate, importModel, Interpreter, OnnxError, OnnxInternalError, type Feed } from '../../src/onnx/index.js';
import { FIXTURES, fixtureBytes, rng } from './helpers.js';

const CASES = 3000;

function mutate(src: Uint8Array, r: () => number): Uint8Array {
  const pick = (n: number) => Math.floor(r() * n);
  let b = src.slice();
  const edits = 1 + pick(4);
  for (let e = 0; e < edits; e++) {
    const kind = pick(7);
    const at = pick(b.length);
    if (kind <= 1) b[at] = pick(256); // random byte
    else if (kind === 2) b[at]! ^= 1 << pick(8); // bit flip
    else if (kind === 3) b = b.slice(0, at); // truncate
    else if (kind === 4) {
      // delete a chunk
      const len = 1 + pick(64);
      b = Uint8Array.from([...b.subarray(0, at), ...b.subarray(at + len)]);
    } else if (kind === 5) {
      // duplicate a chunk
      const len = 1 + pick(64);
      b = Uint8Array.from([...b.subarray(0, at + len), ...b.subarray(at, at + len), ...b.subarray(at + len)]);
    } else {
      // a large varint (e.g. a length or dimension) at a random place
      const big = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f].slice(pick(6));
      b = Uint8Array.from([...b.subarray(0, at), ...big, ...b.subarray(at + big.length)]);
    }
    if (b.length === 0) break;
  }
  return b;
}

describe('fuzz', () => {
  it(`${CASES} mutated fixture files: only typed errors`, () => {
    const r = rng(20240515);
    const sources = FIXTURES.flatMap((n) => [fixtureBytes(n, 'qonnx'), fixtureBytes(n, 'qcdq')]);
    const stats = { imported: 0, ran: 0, formatErrors: 0, runtimeErrors: 0, internal: 0 };
    const unexpected: string[] = [];
    const t0 = performance.now();
    for (let i = 0; i < CASES; i++) {
      const bytes = mutate(sources[i % sources.length]!, r);
      try {
        const graph = importModel(bytes, { maxTensorElements: 1 << 20 });
        stats.imported++;
        const feeds: Record<string, Feed> = {};
        for (const inp of graph.inputs) {
          const dims = (inp.shape ?? [1]).map((d) => (typeof d === 'number' ? Math.min(d, 64) : 1));
          feeds[inp.name] = { dtype: inp.elemType, dims, data: allocate(inp.elemType, dims.reduce((a, c) => a * c, 1)) };
        }
        new Interpreter(graph, { maxElements: 1 << 20 }).run(feeds);
        stats.ran++;
      } catch (e) {
        if (e instanceof OnnxError) {
          if (e.name === 'OnnxFormatError') stats.formatErrors++;
          else stats.runtimeErrors++;
          // Kernel exceptions wrapped by the interpreter: a bug, whatever the input
          if (e instanceof OnnxInternalError) {
            stats.internal++;
            unexpected.push(`case ${i}: ${e.message}`);
          }
        } else unexpected.push(`case ${i}: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
      }
    }
    const secs = (performance.now() - t0) / 1000;
    console.log(`[onnx] fuzz: ${CASES} cases in ${secs.toFixed(1)} s`, stats);
    expect(unexpected.slice(0, 10)).toEqual([]);
    expect(stats.internal).toBe(0);
    expect(stats.formatErrors).toBeGreaterThan(0);
    expect(stats.ran).toBeGreaterThan(0);
  });
});
