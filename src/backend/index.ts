/**
 * Tensor backend selection.
 *
 * fhenet trains on TensorFlow.js. Backends are tried in order of speed:
 *   1. `tensorflow` from @tensorflow/tfjs-node-gpu (CUDA)  — optional peer dependency
 *   2. `tensorflow` from @tensorflow/tfjs-node (native CPU) — optional peer dependency
 *   3. `wasm` (XNNPACK, SIMD) with fhenet's own convolution-gradient kernels, and — when the optional native addon
 *      builds (system C compiler + OpenBLAS, `src/backend/native`) — native multi-threaded Conv2D, its two
 *      gradients and BatchMatMul on the WASM heap (`FHENET_NATIVE_KERNELS=0` disables them)
 *   4. `cpu` (plain JavaScript; slow for convolutions, always available)
 * The first that loads wins. `FHENET_BACKEND` (node-gpu | node | wasm | cpu | webgpu) forces one, and failing to
 * load a forced backend is an error rather than a silent fallback. `webgpu` (TensorFlow.js's WebGPU backend on Dawn,
 * optional packages; ./webgpu.ts) is never chosen automatically: it is experimental in tfjs, and only the asynchronous
 * read paths work on it in Node (see docs/backend.md).
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
// The union package registers every gradient function (tfjs-core alone ships none in its Node build).
import '@tensorflow/tfjs';
import { registerWasmKernels } from './wasm-kernels/index.js';
import { describeNative, nativeStatus, registerNativeKernels, type NativeStatus } from './native/index.js';
import { loadWebGpu, type WebGpuInfo } from './webgpu.js';

export type BackendChoice = 'node-gpu' | 'node' | 'wasm' | 'cpu' | 'webgpu';
/** The automatic order; `webgpu` is only used when asked for. */
export const BACKEND_ORDER: readonly BackendChoice[] = ['node-gpu', 'node', 'wasm', 'cpu'];
const ALL_CHOICES: readonly BackendChoice[] = [...BACKEND_ORDER, 'webgpu'];

export interface BackendInfo {
  /** Which of fhenet's choices is active. */
  choice: BackendChoice;
  /** The tfjs backend name (`tensorflow`, `wasm`, `cpu`). */
  tfBackend: string;
  /** Why earlier choices in the order were skipped. */
  skipped: { choice: BackendChoice; reason: string }[];
  /** For `wasm`: the native accelerator's state (which kernels are native, or why none are). */
  native?: NativeStatus;
  /** For `webgpu`: the adapter Dawn found. */
  webgpu?: WebGpuInfo;
}

let active: BackendInfo | undefined;
let pending: Promise<BackendInfo> | undefined;

async function tryLoad(choice: BackendChoice): Promise<string> {
  switch (choice) {
    case 'node-gpu':
    case 'node': {
      const pkg = choice === 'node-gpu' ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node';
      // Importing the package registers the native `tensorflow` backend; a missing package or a missing native
      // binding (its install script downloads libtensorflow) both throw here.
      await import(pkg);
      if (!(await tf.setBackend('tensorflow'))) throw new Error(`${pkg} loaded but its backend failed to initialise`);
      return 'tensorflow';
    }
    case 'wasm': {
      registerWasmKernels();
      registerNativeKernels(); // after fhenet's WASM kernels: those stay the fallback of unsupported cases
      if (!(await tf.setBackend('wasm'))) throw new Error('the WASM backend failed to initialise');
      return 'wasm';
    }
    case 'webgpu': {
      await loadWebGpu();
      if (!(await tf.setBackend('webgpu'))) throw new Error('the WebGPU backend failed to initialise');
      return 'webgpu';
    }
    case 'cpu': {
      if (!(await tf.setBackend('cpu'))) throw new Error('the CPU backend failed to initialise');
      // The CPU backend greets Node users with a banner recommending tfjs-node on first use; fhenet reports the
      // backend choice itself (describeBackend), so the banner is noise in every CLI run and test log.
      (tf.backend() as unknown as { firstUse?: boolean }).firstUse = false;
      return 'cpu';
    }
  }
}

function parseChoice(value: string): BackendChoice {
  const v = value.trim().toLowerCase();
  const alias: Record<string, BackendChoice> = { gpu: 'node-gpu', tensorflow: 'node', 'tfjs-node': 'node' };
  const choice = (alias[v] ?? v) as BackendChoice;
  if (!ALL_CHOICES.includes(choice)) {
    throw new Error(`FHENET_BACKEND=${value} is not a backend; choose one of ${ALL_CHOICES.join(', ')}`);
  }
  return choice;
}

/**
 * Selects and initialises the tensor backend once per process (later calls return the same result).
 * `force` (or the FHENET_BACKEND environment variable) pins one backend.
 */
export function initBackend(force?: BackendChoice | string): Promise<BackendInfo> {
  if (active && force === undefined) return Promise.resolve(active);
  if (pending && force === undefined) return pending;
  const requested = force ?? process.env.FHENET_BACKEND;
  pending = (async () => {
    const skipped: BackendInfo['skipped'] = [];
    const order = requested ? [parseChoice(requested)] : BACKEND_ORDER;
    for (const choice of order) {
      try {
        const tfBackend = await tryLoad(choice);
        active = { choice, tfBackend, skipped };
        if (choice === 'wasm') active.native = nativeStatus();
        if (choice === 'webgpu') active.webgpu = await loadWebGpu();
        return active;
      } catch (err) {
        const reason = err instanceof Error ? err.message.split('\n')[0]! : String(err);
        if (requested) throw new Error(`backend '${choice}' was requested but could not be loaded: ${reason}`);
        skipped.push({ choice, reason });
      }
    }
    throw new Error(`no tensor backend could be loaded: ${skipped.map((s) => `${s.choice}: ${s.reason}`).join('; ')}`);
  })();
  return pending;
}

/** A one-line description for logs and reports. */
export function describeBackend(info: BackendInfo): string {
  const skipped = info.skipped.map((s) => s.choice).join(', ');
  const native = info.native ? `; ${describeNative(info.native)}` : '';
  const gpu = info.webgpu ? `; adapter ${info.webgpu.adapter}${info.webgpu.compatibility ? ' (compatibility level)' : ''}` : '';
  return `backend ${info.choice} (tfjs '${info.tfBackend}')${native}${gpu}${skipped ? `; unavailable: ${skipped}` : ''}`;
}

export { tf };
export { loadWebGpu, webGpuFlags, type WebGpuInfo } from './webgpu.js';
export {
  describeNative,
  nativeStatus,
  registerNativeKernels,
  setNativeThreads,
  unregisterNativeKernels,
  NATIVE_KERNEL_NAMES,
  type NativeStatus,
} from './native/index.js';
