/**
 * `MaxPoolGrad` for the tfjs WASM backend: a single pass over the pooling windows in JavaScript on the WASM heap,
 * about 4× faster than tfjs's WASM kernel in a small-CNN step (see docs/backend.md).
 *
 * Semantics match tfjs's CPU backend exactly: each window's gradient goes to the *first* maximal input in row-major
 * window order (strict `>` from −∞, padding skipped), so ties — common after ReLU — are broken the same way.
 */
import * as tf from '@tensorflow/tfjs-core';
import { heapF32, type BackendWasm, type TensorInfo } from './util.js';

export function maxPoolGradWasm(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): TensorInfo {
  const backend = args.backend as BackendWasm;
  const { dy, input } = args.inputs as { dy: TensorInfo; input: TensorInfo };
  const attrs = args.attrs as unknown as tf.MaxPoolGradAttrs;
  if (input.dtype !== 'float32') throw new Error(`fhenet wasm MaxPoolGrad: dtype ${input.dtype} is not supported`);
  const info = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    attrs.filterSize,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  const { batchSize: B, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = info;
  const { filterHeight: kH, filterWidth: kW, strideHeight: sh, strideWidth: sw } = info;
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;
  if (dy.shape.join() !== [B, OH, OW, C].join()) {
    throw new Error(`fhenet wasm MaxPoolGrad: dy shape [${dy.shape}] does not match the pooling geometry`);
  }
  const out = backend.makeOutput([B, H, W, C], 'float32');
  const x = heapF32(backend, input);
  const g = heapF32(backend, dy);
  const dx = heapF32(backend, out);
  dx.fill(0);
  const best = new Float32Array(C);
  const where = new Int32Array(C);
  for (let b = 0; b < B; b++) {
    for (let oh = 0; oh < OH; oh++) {
      const r0 = Math.max(0, oh * sh - pt);
      const r1 = Math.min(H, oh * sh - pt + kH);
      for (let ow = 0; ow < OW; ow++) {
        const c0 = Math.max(0, ow * sw - pl);
        const c1 = Math.min(W, ow * sw - pl + kW);
        best.fill(-Infinity);
        where.fill(-1);
        for (let r = r0; r < r1; r++) {
          for (let c = c0; c < c1; c++) {
            const base = ((b * H + r) * W + c) * C;
            for (let d = 0; d < C; d++) {
              const v = x[base + d]!;
              if (v > best[d]!) {
                best[d] = v;
                where[d] = base + d;
              }
            }
          }
        }
        const gBase = ((b * OH + oh) * OW + ow) * C;
        for (let d = 0; d < C; d++) {
          const at = where[d]!;
          if (at >= 0) dx[at] = dx[at]! + g[gBase + d]!;
        }
      }
    }
  }
  return out;
}

export const maxPoolGradConfig: tf.KernelConfig = {
  kernelName: tf.MaxPoolGrad,
  backendName: 'wasm',
  kernelFunc: maxPoolGradWasm as unknown as tf.KernelFunc,
};
