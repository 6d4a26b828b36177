/** `fhenet demo`'s core (src/cli/demo.ts) with tiny settings: trains, serves fc2 on real TFHE, remote == simulate. */
import { describe, expect, it } from 'vitest';
import { runDemo } from '../../src/cli/demo.js';

describe('fhenet demo (tiny)', () => {
  it('trains, compiles, serves on loopback and runs encrypted remote calls equal to simulate', async () => {
    const lines: string[] = [];
    const r = await runDemo({ hidden: 8, epochs: 1, trainSamples: 2000, calls: 2, batch: 2, log: (l) => lines.push(l) });
    expect(r.remoteEqualsSimulate).toBe(true);
    expect(r.params).toBe('PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128');
    expect(r.calls).toHaveLength(2);
    expect(r.keyBytes).toBeGreaterThan(20 * 2 ** 20);
    expect(lines.some((l) => l.startsWith('[5/5]'))).toBe(true);
  }, 60_000);
});
