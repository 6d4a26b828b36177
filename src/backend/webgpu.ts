/**
 * TensorFlow.js's WebGPU backend in Node, through Dawn (Chromium's WebGPU implementation) as packaged by the npm
 * `webgpu` module. Both packages are optional peer dependencies: fhenet trains on WASM/CPU without them, and this
 * backend is chosen only on request (`FHENET_BACKEND=webgpu`).
 *
 * Node has no `navigator.gpu`, and @tensorflow/tfjs-backend-webgpu registers itself at import time only when it
 * sees one; so Dawn's GPU object is installed first and the backend package imported after.
 *
 * `FHENET_WEBGPU_FLAGS` passes Dawn options (comma-separated), e.g. `backend=vulkan`. Without it Dawn's default
 * (Vulkan on Linux) is tried, then `backend=opengl`, which on a machine without a GPU is Mesa's software rasteriser
 * (llvmpipe) — the way fhenet's own CI exercises this path. When no full-feature ("core") adapter exists, the
 * compatibility feature level is tried (OpenGL adapters are compatibility-only).
 */

export interface WebGpuInfo {
  /** The adapter's own description (driver / device), for logs and benchmark tables. */
  adapter: string;
  /** Whether only the compatibility feature level was available. */
  compatibility: boolean;
  /** The Dawn options in effect. */
  flags: string[];
}

interface AdapterLike {
  info?: { vendor?: string; architecture?: string; device?: string; description?: string };
}
interface GpuLike {
  requestAdapter(options?: Record<string, unknown>): Promise<AdapterLike | null>;
}

let loaded: WebGpuInfo | undefined;

export function webGpuFlags(env: string | undefined = process.env.FHENET_WEBGPU_FLAGS): string[] {
  return (env ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

function describeAdapter(a: AdapterLike): string {
  const i = a.info ?? {};
  const parts = [i.vendor, i.architecture, i.device, i.description].filter((s): s is string => !!s && s.length > 0);
  return parts.length > 0 ? parts.join(' ') : 'unnamed adapter';
}

/**
 * Installs Dawn as `navigator.gpu`, checks that an adapter exists, and registers tfjs's `webgpu` backend.
 * Throws with the reason (package missing, no adapter) so that backend selection can report it.
 */
export async function loadWebGpu(): Promise<WebGpuInfo> {
  if (loaded) return loaded;
  let dawn: { create(flags: string[]): unknown; globals: object };
  try {
    dawn = (await import('webgpu')) as unknown as typeof dawn;
  } catch (err) {
    throw new Error(`the optional package 'webgpu' (Dawn for Node) is not installed or failed to load: ${(err as Error).message.split('\n')[0]}`);
  }
  // GPUBufferUsage, GPUMapMode, … are globals in a browser; the tfjs backend reads them as such.
  Object.assign(globalThis, dawn.globals);
  const explicit = webGpuFlags();
  // Without explicit flags: Dawn's default (Vulkan on Linux), then OpenGL — on a machine without a GPU that is
  // Mesa's llvmpipe, slow but a real WebGPU implementation (what fhenet's CI tests on).
  const attempts = explicit.length > 0 ? [explicit] : [[], ['backend=opengl']];
  let found: { adapter: AdapterLike; request: GpuLike['requestAdapter']; compatibility: boolean; flags: string[] } | undefined;
  for (const flags of attempts) {
    // Headless EGL: without a display Mesa's EGL must be told to run surfaceless.
    if (flags.some((f) => /^backend=opengl(es)?$/.test(f)) && !process.env.EGL_PLATFORM) process.env.EGL_PLATFORM = 'surfaceless';
    const gpu = dawn.create(flags) as GpuLike;
    const core = gpu.requestAdapter.bind(gpu);
    let compatibility = false;
    const request = async (options: Record<string, unknown> = {}): Promise<AdapterLike | null> => {
      const a = await core(options);
      if (a) return a;
      const c = await core({ ...options, featureLevel: 'compatibility' });
      if (c) compatibility = true;
      return c;
    };
    const adapter = await request();
    if (adapter) {
      found = { adapter, request, compatibility, flags };
      break;
    }
  }
  if (!found) {
    throw new Error(
      `Dawn found no GPU adapter (tried ${attempts.map((f) => (f.length ? f.join(',') : 'defaults')).join('; ')}): Vulkan needs ` +
        "libvulkan1 and a GPU driver; OpenGL needs Mesa's EGL (Debian: libegl-dev for the unversioned libEGL.so Dawn opens, libegl-mesa0, libgl1-mesa-dri); set FHENET_WEBGPU_FLAGS to choose",
    );
  }
  const { adapter, request, flags } = found;
  const wrapped = { requestAdapter: request };
  const nav = (globalThis as { navigator?: object }).navigator;
  if (nav) Object.defineProperty(nav, 'gpu', { value: wrapped, configurable: true });
  else Object.defineProperty(globalThis, 'navigator', { value: { gpu: wrapped, userAgent: `Node.js/${process.version}` }, configurable: true });
  try {
    await import('@tensorflow/tfjs-backend-webgpu');
  } catch (err) {
    throw new Error(`the optional package '@tensorflow/tfjs-backend-webgpu' is not installed or failed to load: ${(err as Error).message.split('\n')[0]}`);
  }
  loaded = { adapter: describeAdapter(adapter), compatibility: found.compatibility, flags };
  return loaded;
}
