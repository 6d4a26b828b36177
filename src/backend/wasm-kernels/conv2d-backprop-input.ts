/**
 * `Conv2DBackpropInput` for the tfjs WASM backend, replacing tfjs's naive loop with XNNPACK convolutions.
 *
 * For NHWC, stride s, dilation 1 and (top, left) padding (pt, pl), the input gradient is
 *
 *   dx[b, h, w, ci] = Σ_{oh·s + kh − pt = h, ow·s + kw − pl = w} dy[b, oh, ow, co] · W[kh, kw, ci, co]
 *
 * i.e. a stride-1 "full" convolution of dy — with s − 1 zeros inserted between its rows and columns when s > 1 — by
 * the filter rotated 180° with input/output channels swapped, W'[a, b, co, ci] = W[kH−1−a, kW−1−b, ci, co], padded by
 * (kH − 1 − pt, kW − 1 − pl) at the top/left. Negative or excess padding is turned into a final slice.
 */
import * as tf from '@tensorflow/tfjs-core';
import { convGeometry, heapF32, Scratch, type BackendWasm, type TensorInfo } from './util.js';

/** W [kH, kW, ci, co] → W' [kH, kW, co, ci], rotated 180° in space. */
function rotateFilter(backend: BackendWasm, filter: TensorInfo): TensorInfo {
  const [kH, kW, ci, co] = filter.shape as [number, number, number, number];
  const out = backend.makeOutput([kH, kW, co, ci], 'float32');
  const src = heapF32(backend, filter);
  const dst = heapF32(backend, out);
  for (let a = 0; a < kH; a++) {
    for (let b = 0; b < kW; b++) {
      const s0 = ((kH - 1 - a) * kW + (kW - 1 - b)) * ci * co;
      const d0 = (a * kW + b) * co * ci;
      for (let i = 0; i < ci; i++) {
        const si = s0 + i * co;
        for (let o = 0; o < co; o++) dst[d0 + o * ci + i] = src[si + o]!;
      }
    }
  }
  return out;
}

/**
 * dy [B, OH, OW, C] → [B, top + (OH−1)·sh + 1 + bottom, left + (OW−1)·sw + 1 + right, C] with dy's rows/cols placed
 * every sh/sw positions after the top/left margin and zeros elsewhere.
 */
function dilateAndPad(
  backend: BackendWasm,
  dy: TensorInfo,
  sh: number,
  sw: number,
  top: number,
  bottom: number,
  left: number,
  right: number,
): TensorInfo {
  const [B, OH, OW, C] = dy.shape as [number, number, number, number];
  const H = top + (OH - 1) * sh + 1 + bottom;
  const W = left + (OW - 1) * sw + 1 + right;
  const out = backend.makeOutput([B, H, W, C], 'float32');
  const src = heapF32(backend, dy);
  const dst = heapF32(backend, out);
  dst.fill(0);
  for (let b = 0; b < B; b++) {
    for (let oh = 0; oh < OH; oh++) {
      const rowDst = ((b * H + top + oh * sh) * W + left) * C;
      const rowSrc = (b * OH + oh) * OW * C;
      for (let ow = 0; ow < OW; ow++) {
        dst.set(src.subarray(rowSrc + ow * C, rowSrc + (ow + 1) * C), rowDst + ow * sw * C);
      }
    }
  }
  return out;
}

export function conv2DBackpropInputWasm(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}): TensorInfo {
  const backend = args.backend as BackendWasm;
  const { dy, filter } = args.inputs as { dy: TensorInfo; filter: TensorInfo };
  const attrs = args.attrs as unknown as tf.Conv2DBackpropInputAttrs;
  const info = convGeometry(
    'Conv2DBackpropInput',
    attrs.inputShape,
    filter.shape as [number, number, number, number],
    attrs.strides,
    attrs.pad,
    attrs.dimRoundingMode,
    attrs.dataFormat,
  );
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels, filterHeight, filterWidth } = info;
  const [sh, sw] = [info.strideHeight, info.strideWidth];
  if (dy.shape.join() !== [batchSize, outHeight, outWidth, outChannels].join()) {
    throw new Error(`fhenet wasm Conv2DBackpropInput: dy shape [${dy.shape}] does not match the convolution geometry`);
  }
  // Padding of the (dilated) dy for the full convolution; a negative pad means cropping, done as a final slice.
  const padT = filterHeight - 1 - info.padInfo.top;
  const padL = filterWidth - 1 - info.padInfo.left;
  const offT = Math.max(0, -padT);
  const offL = Math.max(0, -padL);
  const top = Math.max(0, padT);
  const left = Math.max(0, padL);
  const dydH = (outHeight - 1) * sh + 1;
  const dydW = (outWidth - 1) * sw + 1;
  const bottom = Math.max(0, offT + inHeight - 1 + filterHeight - dydH - top);
  const right = Math.max(0, offL + inWidth - 1 + filterWidth - dydW - left);

  const scratch = new Scratch(backend);
  try {
    const wRot = scratch.keep(rotateFilter(backend, filter));
    const convAttrs = { strides: [1, 1], dataFormat: 'NHWC', dilations: [1, 1], dimRoundingMode: undefined };
    let dx: TensorInfo;
    if (sh === 1 && sw === 1) {
      dx = scratch.run('Conv2D', { x: dy, filter: wRot }, { ...convAttrs, pad: [[0, 0], [top, bottom], [left, right], [0, 0]] });
    } else {
      const dyd = scratch.keep(dilateAndPad(backend, dy, sh, sw, top, bottom, left, right));
      dx = scratch.run('Conv2D', { x: dyd, filter: wRot }, { ...convAttrs, pad: 'valid' });
    }
    if (offT !== 0 || offL !== 0 || dx.shape[1] !== inHeight || dx.shape[2] !== inWidth) {
      dx = scratch.run('Slice', { x: dx }, { begin: [0, offT, offL, 0], size: [batchSize, inHeight, inWidth, inChannels] });
    }
    scratch.release(dx);
    return dx;
  } catch (err) {
    scratch.release();
    throw err;
  }
}

export const conv2DBackpropInputConfig: tf.KernelConfig = {
  kernelName: tf.Conv2DBackpropInput,
  backendName: 'wasm',
  kernelFunc: conv2DBackpropInputWasm as unknown as tf.KernelFunc,
};
