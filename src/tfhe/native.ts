/**
 * Loader of the optional native kernel (native/kernel.c): the keyswitch and blind-rotation loops in
 * C, compiled at first use with the system C compiler against the Node-API headers and cached in
 * node_modules/.cache/fhenet-tfhe/ (keyed by source hash, Node ABI, CPU). Chosen by measurement
 * (bench/results/tfhe.md): ≈ 10× faster than the TypeScript loops on this machine.
 *
 * Anything that goes wrong — no compiler, no headers, a failing build, FHENET_TFHE_NATIVE=0 —
 * yields `null` and the TypeScript implementation (the reference) is used instead.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface NativeKernel {
  /** Blind rotation of `batch` ciphertexts (luts batch×N, masks batch×n, accs batch×(k+1)N). */
  blindRotate(
    bsk: Float64Array, luts: Float64Array, masks: Int32Array, bodies: Int32Array, accs: Float64Array,
    batch: number, n: number, k: number, N: number, baseLog: number, level: number,
    twRe: Float64Array, twIm: Float64Array, stRe: Float64Array, stIm: Float64Array,
  ): void;
  keyswitch(rows: Float64Array, input: Uint32Array, out: Float64Array, inputDim: number, outputSize: number, baseLog: number, level: number): void;
}

let cached: NativeKernel | null | undefined;
let loadError: string | undefined;

/** Why the native kernel is not in use (undefined when it is, or before the first attempt). */
export function nativeKernelError(): string | undefined {
  return loadError;
}

function headerDir(): string | undefined {
  const candidates = [
    join(dirname(process.execPath), '..', 'include', 'node'),
    '/usr/include/node',
    '/usr/local/include/node',
  ];
  return candidates.find((d) => existsSync(join(d, 'node_api.h')));
}

function cacheDir(root: string): string {
  const inModules = join(root, 'node_modules');
  return existsSync(inModules) ? join(inModules, '.cache', 'fhenet-tfhe') : join(tmpdir(), 'fhenet-tfhe');
}

/** The native kernel, building it if needed; null if unavailable (TypeScript fallback). */
export function loadNativeKernel(): NativeKernel | null {
  if (cached !== undefined) return cached;
  cached = null;
  if (process.env.FHENET_TFHE_NATIVE === '0') {
    loadError = 'disabled by FHENET_TFHE_NATIVE=0';
    return null;
  }
  try {
    const here = dirname(fileURLToPath(import.meta.url));
    // From src/tfhe (tsx, tests) the source sits next to this file; from a tsc build (dist/tfhe,
    // which does not copy .c files) it is found in the package's src/ folder.
    const source = [join(here, 'native', 'kernel.c'), join(here, '..', '..', 'src', 'tfhe', 'native', 'kernel.c')].find((p) => existsSync(p));
    if (!source) throw new Error('native/kernel.c not found');
    const code = readFileSync(source);
    const flags = ['-O3', '-march=native', '-ffp-contract=off', '-shared', '-fPIC'];
    const hash = createHash('sha256')
      .update(code)
      .update(flags.join(' '))
      .update(process.versions.modules)
      .update(process.arch)
      .update(cpus()[0]?.model ?? '')
      .digest('hex')
      .slice(0, 16);
    // The package root is three levels above src/tfhe/ (or dist/tfhe/).
    const dir = cacheDir(join(here, '..', '..'));
    const target = join(dir, `kernel-${hash}.node`);
    if (!existsSync(target)) {
      const headers = headerDir();
      if (!headers) throw new Error('Node-API headers (node_api.h) not found');
      mkdirSync(dir, { recursive: true });
      const tmp = `${target}.${process.pid}.tmp`;
      const cc = process.env.CC ?? 'gcc';
      execFileSync(cc, [...flags, `-I${headers}`, source, '-o', tmp, '-lm'], {
        stdio: 'pipe',
        timeout: 120_000,
      });
      renameSync(tmp, target); // atomic: concurrent builders (test workers) never load a half file
      rmSync(tmp, { force: true });
    }
    const req = createRequire(import.meta.url);
    const mod = req(target) as NativeKernel;
    if (typeof mod.blindRotate !== 'function' || typeof mod.keyswitch !== 'function') throw new Error('kernel exports missing');
    cached = mod;
  } catch (e) {
    loadError = (e as Error).message.split('\n')[0];
    cached = null;
  }
  return cached;
}
