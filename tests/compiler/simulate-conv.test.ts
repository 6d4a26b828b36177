import { describe, expect, it } from 'vitest';
import type { Circuit } from '../../src/compiler/circuit.js';
import { simulate } from '../../src/compiler/simulate.js';
import { loadSimulateKernel, simulateKernelError } from '../../src/compiler/native.js';
import { expectNativeWhenRequired } from '../require-native.js';

/** The textbook convolution the simulator's weight-stationary loop must equal bit for bit. */
function naiveConv(x: Float64Array, [C, H, W]: number[], w: Int32Array, [O, , KH, KW]: number[], [sh, sw]: number[], [pt, pl]: number[], [OH, OW]: number[]): Float64Array {
  const y = new Float64Array(O * OH * OW);
  for (let o = 0; o < O; o++)
    for (let oy = 0; oy < OH; oy++)
      for (let ox = 0; ox < OW; ox++) {
        let s = 0;
        for (let c = 0; c < C; c++)
          for (let ky = 0; ky < KH; ky++)
            for (let kx = 0; kx < KW; kx++) {
              const iy = oy * sh + ky - pt;
              const ix = ox * sw + kx - pl;
              if (iy >= 0 && iy < H && ix >= 0 && ix < W) s += w[((o * C + c) * KH + ky) * KW + kx]! * x[(c * H + iy) * W + ix]!;
            }
        y[(o * OH + oy) * OW + ox] = s;
      }
  return y;
}

describe('simulate: convolution', () => {
  it('equals the textbook loop for random shapes, strides, asymmetric pads and sparse weights', () => {
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
    for (let trial = 0; trial < 40; trial++) {
      const [C, H, W, O, KH, KW, sh, sw] = [int(1, 12), int(3, 14), int(3, 14), int(1, 16), int(1, 4), int(1, 4), int(1, 3), int(1, 3)];
      const pads: [number, number, number, number] = [int(0, 2), int(0, 2), int(0, 2), int(0, 2)];
      const OH = Math.floor((H + pads[0] + pads[2] - KH) / sh) + 1;
      const OW = Math.floor((W + pads[1] + pads[3] - KW) / sw) + 1;
      if (OH < 1 || OW < 1) continue;
      const w = Int32Array.from({ length: O * C * KH * KW }, () => (rnd() < 0.4 ? 0 : int(-7, 7)));
      const batch = 2;
      const x = Float64Array.from({ length: batch * C * H * W }, () => int(-8, 7));
      const circuit = {
        input: { name: 'x', shape: [C, H, W] },
        values: [
          { name: 'x', shape: [C, H, W] },
          { name: 'y', shape: [O, OH, OW] },
        ],
        ops: [{ kind: 'conv', name: 'c', input: 'x', output: 'y', weight: w, weightDims: [O, C, KH, KW], strides: [sh, sw], pads }],
        output: { value: 'y' },
      } as unknown as Circuit;
      expectNativeWhenRequired('simulation dgemm', loadSimulateKernel() !== null, simulateKernelError());
      for (const native of [false, true]) {
        const got = simulate(circuit, x, batch, { native }).output;
        for (let n = 0; n < batch; n++) {
          const want = naiveConv(x.subarray(n * C * H * W, (n + 1) * C * H * W), [C, H, W], w, [O, C, KH, KW], [sh, sw], pads, [OH, OW]);
          expect(Array.from(got.subarray(n * want.length, (n + 1) * want.length))).toEqual(Array.from(want));
        }
      }
    }
  });
});

describe('simulate: native kernel', () => {
  it('loads where the CI requires native kernels, and its gemm equals the TypeScript loop on large integers', () => {
    const k = loadSimulateKernel();
    expectNativeWhenRequired('simulation dgemm', k !== null, simulateKernelError());
    const [batch, inF, out] = [3, 300, 40];
    const x = Float64Array.from({ length: batch * inF }, (_, i) => ((i * 2654435761) % 65536) - 32768);
    const weight = Int32Array.from({ length: out * inF }, (_, i) => ((i * 40503) % 511) - 255);
    const circuit = {
      input: { name: 'x', shape: [inF] },
      values: [
        { name: 'x', shape: [inF] },
        { name: 'y', shape: [out] },
      ],
      ops: [{ kind: 'gemm', name: 'g', input: 'x', output: 'y', weight, outFeatures: out, inFeatures: inF }],
      output: { value: 'y' },
    } as unknown as Circuit;
    const a = simulate(circuit, x, batch, { native: false }).output;
    const b = simulate(circuit, x, batch).output;
    expect(Array.from(b)).toEqual(Array.from(a));
    expect(Math.max(...Array.from(a, Math.abs))).toBeGreaterThan(2 ** 24); // beyond float32: float64 exactness matters
  });
});
