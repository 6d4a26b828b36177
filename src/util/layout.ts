/**
 * Image batch layouts. fhenet's modules take NHWC (TensorFlow.js's native layout); exported graphs and compiled
 * circuits take NCHW (PyTorch/ONNX). tfjs-free, so data can be converted where no tfjs is loaded.
 */

/** [n, H, W, C] → [n, C, H, W]: a batch of n NHWC images (one sample's `shape` is [H, W, C]) in NCHW order. */
export function nhwcToNchw(x: Float32Array, n: number, shape: readonly number[]): Float32Array {
  const [h, w, c] = shape as [number, number, number];
  const per = h * w * c;
  const out = new Float32Array(n * per);
  for (let i = 0; i < n; i++) {
    for (let y = 0; y < h; y++) for (let xx = 0; xx < w; xx++) for (let k = 0; k < c; k++) out[i * per + k * h * w + y * w + xx] = x[i * per + (y * w + xx) * c + k]!;
  }
  return out;
}
