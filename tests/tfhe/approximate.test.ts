/**
 * Approximate rounding in TFHE (a tlu marked `approximate`): a wide accumulator rounded to a narrow table runs on a
 * parameter set sized for the table, not for the accumulator. The price is an index off by one near a rounding
 * boundary, never more; accumulators at a box centre read exactly the simulator's entry.
 */
import { describe, expect, it } from 'vitest';
import { type Circuit, deserializeCircuit, serializeCircuit } from '../../src/compiler/circuit.js';
import { simulate } from '../../src/compiler/simulate.js';
import { TfheCircuitClient, TfheCircuitServer, planCircuit } from '../../src/runtime/executor.js';
import { TfheNoiseError } from '../../src/tfhe/errors.js';
import { bitSumCircuit } from './helpers.js';

const SET_2_2 = 'PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128';
const n = 64;

/**
 * 64 one-bit inputs → table t0 (0 → 1, 1 → 2) → sum: an 8-bit accumulator in [64, 128] → t1 rounds 4 bits away
 * (index ⌊(acc + 8) / 16⌋ ∈ [4, 8] of a 4-bit table whose entry i is i, so the output is the index itself).
 */
function wideSum(approximate: boolean): Circuit {
  const tables = Int32Array.from({ length: 16 }, (_, i) => i);
  return bitSumCircuit(n, 1, Int32Array.of(1, 2), { roundBits: 4, inputBits: 4, tables, ...(approximate ? { approximate: true } : {}) }, 'wide-sum');
}

describe('approximate rounding on TFHE ciphertexts', () => {
  it('exact rounding of the 8-bit accumulator fits no set; approximate rounding to 4 bits fits 2_2', () => {
    expect(() => planCircuit(wideSum(false))).toThrow(TfheNoiseError);
    expect(() => planCircuit(wideSum(false))).toThrow(/op 't1'.*8-bit accumulator/);
    const plan = planCircuit(wideSum(true));
    expect(plan.params.name).toBe(SET_2_2);
    const t1 = plan.noise.find((x) => x.op === 't1')!;
    expect(t1).toMatchObject({ B: 8, approximate: true });
    expect(t1.log2PFail).toBeLessThan(-40); // P(index off by more than one)
    // the flag survives the circuit file
    expect(planCircuit(deserializeCircuit(serializeCircuit(wideSum(true)))).params.name).toBe(SET_2_2);
    expect(() => deserializeCircuit(serializeCircuit({ ...wideSum(true), ops: wideSum(true).ops.map((o) => (o.name === 't1' ? { ...o, approximate: 1 as unknown as boolean } : o)) }))).toThrow(/approximate must be a boolean/);
  });

  it('encrypted: box centres read exactly the simulated entry, boundary ties at most one entry away', async () => {
    const circuit = wideSum(true);
    // sample s has ones[s] inputs set: acc = 64 + ones. Centres (acc = 16·m): ones 0, 16, 32, 48, 64. Ties
    // (acc ≡ 8 mod 16, rounded up by the simulator): ones 8, 24, 40, 56.
    const centres = [0, 16, 32, 48, 64];
    const ties = [8, 24, 40, 56];
    const ones = [...centres, ...ties];
    const ints = new Float64Array(n * ones.length);
    ones.forEach((k, s) => ints.fill(1, s * n, s * n + k));
    const sim = simulate(circuit, ints, ones.length).output;
    expect(Array.from(sim)).toEqual([4, 5, 6, 7, 8, 5, 6, 7, 8]);
    const client = TfheCircuitClient.forCircuit(circuit);
    const server = await TfheCircuitServer.create(client.serverKey(), { params: client.paramsName });
    try {
      expect(client.paramsName).toBe(SET_2_2);
      const down = await server.runEncrypted(circuit, client.encryptInputs(circuit, ints, ones.length), ones.length);
      const got = Array.from(client.decryptOutputs(circuit, down, ones.length));
      expect(got.slice(0, centres.length)).toEqual(Array.from(sim.subarray(0, centres.length)));
      // A tie rounds up in simulate and sits half a unit above its box boundary in TFHE (the plan's half-unit
      // shift), so noise can only take it down one entry — what the noisy simulation (noisy-simulate.ts) draws.
      got.forEach((v, s) => expect([0, -1], `sample with ${ones[s]} ones`).toContain(v - sim[s]!));
    } finally {
      await server.close();
      client.dispose();
    }
  }, 120_000);
});
