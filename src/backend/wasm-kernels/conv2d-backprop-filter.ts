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
 */
import * as tf from '@tensorflow/tfjs-core';
import { convGeometry, Scratch, type BackendWasm, type TensorInfo } from './util.js';

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
