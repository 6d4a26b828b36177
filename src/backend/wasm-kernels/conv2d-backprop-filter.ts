/**
 * `Conv2DBackpropFilter` for the tfjs WASM backend, which has none.
 *
 * For NHWC, stride s, dilation 1 and (top, left) padding (pt, pl), the filter gradient is
 *
 *   dW[kh, kw, ci, co] = Σ_{b, oh, ow} x[b, oh·s + kh − pt, ow·s + kw − pl, ci] · dy[b, oh, ow, co]
 *
 * which is itself a forward convolution: take xᵀ = x with batch and channels swapped ([ci, H, W, B]) as the image,
 * dyᵀ = dy as a filter of shape [OH, OW, B, co] with dilation s, stride 1 and padding (pt, pl); the result
 * [ci, kH, kW, co] is transposed to [kH, kW, ci, co]. That convolution runs on XNNPACK (tfjs's WASM `Conv2D`).
 *
 * XNNPACK re-packs the "filter" operand on every call (it is a new tensor each step), which costs about as much as
 * the arithmetic for these huge filters. For stride 1 the roles can be swapped — dyᵀ ([co, OH, OW, B]) as the image,
 * x ([H, W, B, ci]) as the filter, output [co, kH, kW, ci] in reversed (kh, kw) order — so the smaller of x and dy
 * is the one packed (x, in the usual CNN whose channels grow). For stride > 1 the swap would multiply the work by s²
 * (dy would need zero-insertion), so the first form is kept.
 */
import * as tf from '@tensorflow/tfjs-core';
import { convGeometry, heapF32, Scratch, type BackendWasm, type TensorInfo } from './util.js';

/** g [co, kH, kW, ci] with (kh, kw) reversed → dW [kH, kW, ci, co]. */
function unswap(backend: BackendWasm, g: TensorInfo, kH: number, kW: number): TensorInfo {
  const [co, gh, gw, ci] = g.shape as [number, number, number, number];
  const out = backend.makeOutput([kH, kW, ci, co], 'float32');
  const src = heapF32(backend, g);
  const dst = heapF32(backend, out);
  for (let o = 0; o < co; o++) {
    for (let a = 0; a < kH; a++) {
      for (let b = 0; b < kW; b++) {
        const s0 = ((o * gh + (kH - 1 - a)) * gw + (kW - 1 - b)) * ci;
        const d0 = (a * kW + b) * ci * co + o;
        for (let i = 0; i < ci; i++) dst[d0 + i * co] = src[s0 + i]!;
      }
    }
  }
  return out;
}

export function conv2DBackpropFilterWasm(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}): TensorInfo {
  const backend = args.backend as BackendWasm;
  const { x, dy } = args.inputs as { x: TensorInfo; dy: TensorInfo };
  const attrs = args.attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  const info = convGeometry(
    'Conv2DBackpropFilter',
    x.shape as [number, number, number, number],
    attrs.filterShape,
    attrs.strides,
    attrs.pad,
    attrs.dimRoundingMode,
    attrs.dataFormat,
  );
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels, filterHeight, filterWidth } = info;
  const [sh, sw] = [info.strideHeight, info.strideWidth];
  const [pt, pl] = [info.padInfo.top, info.padInfo.left];
  if (dy.shape.join() !== [batchSize, outHeight, outWidth, outChannels].join()) {
    throw new Error(`fhenet wasm Conv2DBackpropFilter: dy shape [${dy.shape}] does not match the convolution geometry`);
  }
  if (pt < 0 || pl < 0) throw new Error('fhenet wasm Conv2DBackpropFilter: negative padding is not supported');

  const scratch = new Scratch(backend);
  try {
    if (sh === 1 && sw === 1 && x.shape.reduce((a, b) => a * b, 1) < dy.shape.reduce((a, b) => a * b, 1)) {
      // out[co, p, q, ci] = Σ dy[b, p + i − P, q + j − L, co] · x[b, i, j, ci] with p = kH − 1 − kh (see above).
      const P = filterHeight - 1 - pt;
      const L = filterWidth - 1 - pl;
      const offT = Math.max(0, -P);
      const offL = Math.max(0, -L);
      const top = Math.max(0, P);
      const left = Math.max(0, L);
      const bottom = Math.max(0, offT + filterHeight - 1 + inHeight - outHeight - top);
      const right = Math.max(0, offL + filterWidth - 1 + inWidth - outWidth - left);
      const dyT = scratch.run('Transpose', { x: dy }, { perm: [3, 1, 2, 0] }); // [co, OH, OW, B]
      const xF = scratch.run('Transpose', { x }, { perm: [1, 2, 0, 3] }); // [H, W, B, ci]
      let g = scratch.run(
        'Conv2D',
        { x: dyT, filter: xF },
        { strides: [1, 1], pad: [[0, 0], [top, bottom], [left, right], [0, 0]], dataFormat: 'NHWC', dilations: [1, 1] },
      );
      if (offT !== 0 || offL !== 0 || g.shape[1] !== filterHeight || g.shape[2] !== filterWidth) {
        g = scratch.run('Slice', { x: g }, { begin: [0, offT, offL, 0], size: [outChannels, filterHeight, filterWidth, inChannels] });
      }
      const dW = scratch.keep(unswap(backend, g, filterHeight, filterWidth));
      scratch.release(dW);
      return dW;
    }
    const xT = scratch.run('Transpose', { x }, { perm: [3, 1, 2, 0] }); // [ci, H, W, B]
    const dyT = scratch.run('Transpose', { x: dy }, { perm: [1, 2, 0, 3] }); // [OH, OW, B, co]
    // Bottom/right padding so that the result has at least kH × kW positions (extra rows/cols are sliced off).
    const pb = Math.max(0, filterHeight + sh * (outHeight - 1) - inHeight - pt);
    const pr = Math.max(0, filterWidth + sw * (outWidth - 1) - inWidth - pl);
    let g = scratch.run(
      'Conv2D',
      { x: xT, filter: dyT },
      {
        strides: [1, 1],
        pad: [[0, 0], [pt, pb], [pl, pr], [0, 0]],
        dataFormat: 'NHWC',
        dilations: [sh, sw],
        dimRoundingMode: undefined,
      },
    ); // [ci, ≥kH, ≥kW, co]
    if (g.shape[1] !== filterHeight || g.shape[2] !== filterWidth) {
      g = scratch.run('Slice', { x: g }, { begin: [0, 0, 0, 0], size: [inChannels, filterHeight, filterWidth, outChannels] });
    }
    const dW = scratch.run('Transpose', { x: g }, { perm: [1, 2, 0, 3] }); // [kH, kW, ci, co]
    scratch.release(dW);
    return dW;
  } catch (err) {
    scratch.release();
    throw err;
  }
}

export const conv2DBackpropFilterConfig: tf.KernelConfig = {
  kernelName: tf.Conv2DBackpropFilter,
  backendName: 'wasm',
  kernelFunc: conv2DBackpropFilterWasm as unknown as tf.KernelFunc,
};
