/**
 * The moonshot's existence check (experiments/checkerboard/moonshot-construct.ts): a hand-built 3-bit net with the
 * notebook's quantizers and an unsigned input reaches the data's accuracy ceiling with a worst-case accumulator of
 * at most 5 bits — which also pins the quantized forward pass and the accumulator analysis on a hand computation.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.js';
import { loadPeerCheckerboard, quantizedInputCeiling } from '../../datasets/checkerboard/index.js';
import { analyzeAccumulators } from '../../src/analysis/accumulator.js';
import { evaluate } from '../../src/train/trainer.js';
import { constructedNet } from '../../experiments/checkerboard/moonshot-construct.js';

beforeAll(async () => {
  await initBackend();
});

describe('hand-built 5-bit-accumulator checkerboard net', () => {
  it('reaches the ceiling on the peer arrays; fc2 worst case is [−6, 12] (5 bits), fc1 [0, 3], fc3 [−3, 3]', () => {
    const d = loadPeerCheckerboard();
    const net = constructedNet(100);
    net.eval();
    expect(evaluate(net, d.test).accuracy).toBeCloseTo(quantizedInputCeiling(d.test), 10);
    expect(evaluate(net, d.train).accuracy).toBeCloseTo(quantizedInputCeiling(d.train), 10);
    const rep = analyzeAccumulators(net, d.train);
    const by = new Map(rep.layers.map((l) => [l.layer, l]));
    expect([by.get('fc1')!.worstCase.min, by.get('fc1')!.worstCase.max]).toEqual([0, 3]);
    expect([by.get('fc2')!.worstCase.min, by.get('fc2')!.worstCase.max]).toEqual([-6, 12]);
    expect([by.get('fc3')!.worstCase.min, by.get('fc3')!.worstCase.max]).toEqual([-3, 3]);
    expect(rep.worstCaseBits).toBe(5);
    expect(rep.bits).toBeLessThanOrEqual(5);
  });
});
