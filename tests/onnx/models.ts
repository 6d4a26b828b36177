/** Graphs built with GraphBuilder, standing in for fhenet-trained networks (not a test file). */
import { GraphBuilder, floatTensor, type Graph } from '../../src/onnx/index.js';
import { rng } from './helpers.js';

function randn(r: () => number, n: number, scale = 1): number[] {
  return Array.from({ length: n }, () => (r() * 2 - 1) * scale);
}

/** Checkerboard-style MLP: 3-bit input, 3-bit narrow weights (scale 1/3), 3-bit ReLUs, float biases. */
export function checkerboardMlp(seed = 1): Graph {
  const r = rng(seed);
  const b = new GraphBuilder('checkerboard_mlp');
  const w3 = { scale: 1 / 3, bitWidth: 3, signed: true, narrow: true };
  let x = b.quant(b.input('x', ['batch', 2]), { ...w3, name: '/quant_inp/Quant' });
  const dims = [2, 32, 32, 2];
  for (let l = 0; l < 3; l++) {
    const [nin, nout] = [dims[l]!, dims[l + 1]!];
    // Weights already on the grid (what Brevitas 0.11 stores), biases float.
    const wv = randn(r, nin * nout).map((v) => Math.round(v * 3) / 3);
    const w = b.quant(b.addInitializer(`fc${l + 1}.weight`, floatTensor([nout, nin], wv)), { ...w3, name: `/fc${l + 1}/weight_quant/Quant` });
    x = b.gemm(x, w, b.addInitializer(`fc${l + 1}.bias`, floatTensor([nout], randn(r, nout, 0.5))), `/fc${l + 1}/Gemm`);
    if (l < 2) {
      x = b.quant(b.relu(x, `/relu${l + 1}/Relu`), { scale: 0.2 + 0.05 * l, bitWidth: 3, signed: false, narrow: false, name: `/relu${l + 1}/Quant` });
    }
  }
  b.output(x);
  return b.build();
}

/**
 * A small CNN with BatchNorm: 8-bit input, Conv (4-bit per-channel weights, scale shape [out,1,1,1]),
 * BatchNormalization, 4-bit signed Quant, MaxPool, AveragePool, Flatten, Gemm with float bias.
 */
export function cnnWithBatchNorm(seed = 2): Graph {
  const r = rng(seed);
  const b = new GraphBuilder('cnn_bn');
  let x = b.quant(b.input('x', ['batch', 2, 8, 8]), { scale: 0.03, bitWidth: 8, signed: true, narrow: false });
  const convScale = [0.05, 0.04, 0.06, 0.03];
  const wConv = b.quant(b.addInitializer('conv.weight', floatTensor([4, 2, 3, 3], randn(r, 72, 0.3))), {
    scale: convScale,
    scaleDims: [4, 1, 1, 1],
    bitWidth: 4,
    signed: true,
    narrow: true,
  });
  x = b.conv(x, wConv, b.addInitializer('conv.bias', floatTensor([4], randn(r, 4, 0.1))), { kernelShape: [3, 3], pads: [1, 1, 1, 1] });
  x = b.batchNorm(
    x,
    b.addInitializer('bn.weight', floatTensor([4], randn(r, 4, 0.5).map((v) => v + 1))),
    b.addInitializer('bn.bias', floatTensor([4], randn(r, 4, 0.5))),
    b.addInitializer('bn.running_mean', floatTensor([4], randn(r, 4, 0.1))),
    b.addInitializer('bn.running_var', floatTensor([4], randn(r, 4, 0.2).map((v) => v + 0.8))),
  );
  x = b.quant(b.relu(x), { scale: 0.25, bitWidth: 4, signed: false, narrow: false });
  x = b.maxPool(x, [2, 2]);
  x = b.averagePool(x, [2, 2]);
  x = b.quant(x, { scale: 0.2, bitWidth: 4, signed: true, narrow: false });
  x = b.flatten(x);
  const wFc = b.quant(b.addInitializer('fc.weight', floatTensor([10, 16], randn(r, 160, 0.4))), { scale: 0.05, bitWidth: 4, signed: true, narrow: true });
  x = b.gemm(x, wFc, b.addInitializer('fc.bias', floatTensor([10], randn(r, 10, 0.1))));
  b.output(x);
  return b.build();
}

/** MLP with per-channel weight scales ([out, 1]) and an int32 bias quantizer (scale = s_in · s_w). */
export function mlpInt32Bias(seed = 3): Graph {
  const r = rng(seed);
  const b = new GraphBuilder('mlp_int32_bias');
  const sIn = 0.02;
  let x = b.quant(b.input('x', ['batch', 6]), { scale: sIn, bitWidth: 8, signed: true, narrow: false });
  const sW = [0.01, 0.02, 0.015, 0.03, 0.025];
  const w = b.quant(b.addInitializer('fc.weight', floatTensor([5, 6], randn(r, 30, 0.5))), {
    scale: sW,
    scaleDims: [5, 1],
    bitWidth: 6,
    signed: true,
    narrow: true,
  });
  const bias = b.quant(b.addInitializer('fc.bias', floatTensor([5], randn(r, 5, 0.3))), {
    scale: sW.map((s) => Math.fround(s * sIn)),
    bitWidth: 32,
    signed: true,
    narrow: false,
  });
  x = b.gemm(x, w, bias);
  x = b.quant(b.relu(x), { scale: 0.01, bitWidth: 7, signed: false, narrow: false });
  b.output(x);
  return b.build();
}

/**
 * MLP whose activation quantizers are 9–16 bits and narrower than int16/uint16 (12-bit signed input, 10-bit
 * unsigned ReLU with a zero point, 16-bit narrow output): their QCDQ form clips in float before QuantizeLinear.
 * The scales are small enough that random inputs in [−1, 1] hit every bound.
 */
export function mlpWideActivations(seed = 4): Graph {
  const r = rng(seed);
  const b = new GraphBuilder('mlp_wide_activations');
  let x = b.quant(b.input('x', ['batch', 6]), { scale: 1 / 4096, bitWidth: 12, signed: true, narrow: false });
  const w1 = b.quant(b.addInitializer('fc1.weight', floatTensor([8, 6], randn(r, 48, 0.5))), { scale: 0.01, bitWidth: 8, signed: true, narrow: true });
  x = b.gemm(x, w1, b.addInitializer('fc1.bias', floatTensor([8], randn(r, 8, 0.1))));
  x = b.quant(b.relu(x), { scale: 1 / 2048, zeroPoint: 3, bitWidth: 10, signed: false, narrow: false });
  const w2 = b.quant(b.addInitializer('fc2.weight', floatTensor([3, 8], randn(r, 24, 0.5))), { scale: 0.01, bitWidth: 8, signed: true, narrow: true });
  x = b.gemm(x, w2, b.addInitializer('fc2.bias', floatTensor([3], randn(r, 3, 0.1))));
  x = b.quant(x, { scale: 1 / 65536, bitWidth: 16, signed: true, narrow: true });
  b.output(x);
  return b.build();
}
