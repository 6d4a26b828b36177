/**
 * Helpers for kernels that fhenet registers on the tfjs WASM backend.
 *
 * A kernel here composes tfjs's own (fast, XNNPACK-backed) WASM kernels by calling their `kernelFunc` directly on the
 * same backend instance: no tensors, no tape, no engine bookkeeping — only backend data ids, which the kernel frees
 * itself with `backend.disposeData` once they are no longer needed.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

export type { BackendWasm };
export type TensorInfo = tf.TensorInfo;

/** Runs the WASM backend's registered kernel `name` (tfjs's or fhenet's) on backend data. */
export function runWasmKernel(
  backend: BackendWasm,
  name: string,
  inputs: Record<string, TensorInfo>,
  attrs: Record<string, unknown> = {},
): TensorInfo {
  const config = tf.getKernel(name, 'wasm');
  if (!config) throw new Error(`fhenet wasm kernels: the WASM backend has no '${name}' kernel`);
  const out = config.kernelFunc({ inputs, backend, attrs: attrs as tf.NamedAttrMap });
  if (Array.isArray(out)) throw new Error(`fhenet wasm kernels: '${name}' returned several outputs`);
  return out;
}

/** Collects intermediate backend data and frees it in one go (the kernel's own `tidy`). */
export class Scratch {
  private readonly held: TensorInfo[] = [];
  constructor(private readonly backend: BackendWasm) {}

  /** Marks `t` as an intermediate to free later and returns it. */
  keep(t: TensorInfo): TensorInfo {
    this.held.push(t);
    return t;
  }

  /** Runs a kernel and records its output as an intermediate. */
  run(name: string, inputs: Record<string, TensorInfo>, attrs: Record<string, unknown> = {}): TensorInfo {
    return this.keep(runWasmKernel(this.backend, name, inputs, attrs));
  }

  /** Frees every intermediate except `result` (which may be one of them). */
  release(result?: TensorInfo): void {
    for (const t of this.held) {
      if (t !== result) this.backend.disposeData(t.dataId);
    }
    this.held.length = 0;
  }
}

/** Float32 view of a tensor's data on the WASM heap. Take it only after the last allocation (heap growth detaches). */
export function heapF32(backend: BackendWasm, t: TensorInfo): Float32Array {
  return backend.typedArrayFromHeap(t) as Float32Array;
}

/** The forward convolution geometry for NHWC and dilation 1, with a clear error for what these kernels do not do. */
export function convGeometry(
  kernel: string,
  xShape: [number, number, number, number],
  filterShape: [number, number, number, number],
  strides: number | [number, number],
  pad: tf.backend_util.ExplicitPadding | 'valid' | 'same' | number,
  dimRoundingMode: 'floor' | 'round' | 'ceil' | undefined,
  dataFormat: string | undefined,
): tf.backend_util.Conv2DInfo {
  if (dataFormat !== undefined && dataFormat !== 'NHWC' && dataFormat !== 'channelsLast') {
    throw new Error(`fhenet wasm ${kernel}: dataFormat '${dataFormat}' is not supported (NHWC only)`);
  }
  const info = tf.backend_util.computeConv2DInfo(xShape, filterShape, strides, 1, pad, dimRoundingMode, false, 'channelsLast');
  if (info.dilationHeight !== 1 || info.dilationWidth !== 1) {
    throw new Error(`fhenet wasm ${kernel}: dilations other than 1 are not supported`);
  }
  return info;
}
