/**
 * Build-at-first-use loader for fhenet's optional native Node-API addons (C sources compiled with the system compiler
 * against the Node-API headers, no node-gyp, no prebuilt binaries).
 *
 *   const r = loadNativeAddon<MyAddon>({
 *     name: 'fhenet-blas',                       // cache folder and file prefix
 *     sources: [findSource(import.meta.url, ['native/kernels.c', '../../src/backend/native/kernels.c'])],
 *     flags: ['-O3', '-march=native'],           // compile flags (part of the cache key)
 *     includeDirs: ['/usr/include/x86_64-linux-gnu/openblas-pthread'],
 *     libs: ['-lopenblas', '-lpthread', '-lm'],  // link arguments (part of the cache key)
 *     disableEnv: 'FHENET_NATIVE_KERNELS',       // '0' / 'false' / 'off' disables the addon
 *     exports: ['conv2d'],                       // functions the module must export
 *   });
 *   if (r.addon) … else console.log(r.error);    // r.error: one line saying why it is unavailable
 *
 * The shared object is cached in `<package>/node_modules/.cache/<name>/<name>-<hash>.node` (or the OS temp folder
 * when there is no node_modules), keyed by the sources' contents, flags, libraries, compiler, Node ABI, architecture,
 * CPU model and CPU feature flags, so an edit or another machine rebuilds and everything else loads in milliseconds.
 * Builds write to a temporary file and rename it into place, so concurrent builders (test workers) never load half
 * a file. Nothing throws: any failure (disabled, no compiler, no headers, a failing build, missing exports) gives
 * `addon: null` and the reason (the compiler's or linker's own error line when a build fails), and the result is
 * memoised per `name` for the life of the process. A successful build removes older builds of the same name from the cache.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface NativeAddonSpec {
  /** Cache folder and file prefix; also the memoisation key (one result per name per process). */
  name: string;
  /** Source files (absolute paths). C++ sources (.cc/.cpp/.cxx) switch the default compiler to `$CXX` / `g++`. */
  sources: string[];
  /** Compiler flags; `-shared -fPIC` are always added. Default `['-O3']`. */
  flags?: string[];
  /** Headers the sources include: hashed into the cache key (an edited header rebuilds), never compiled. */
  headers?: string[];
  /** Extra include directories (the Node-API headers' directory is always added). */
  includeDirs?: string[];
  /** Link arguments after the sources, e.g. `['-lopenblas', '-lm']`. */
  libs?: string[];
  /** Compiler executable; default `$CC` or `gcc` (`$CXX` or `g++` for C++ sources). */
  compiler?: string;
  /** Environment variable that disables the addon when set to `0`, `false`, `off` or `no`. */
  disableEnv?: string;
  /** Names of functions the module must export; a module lacking one is rejected. */
  exports?: string[];
  /** Build timeout in milliseconds (default 120 000). */
  timeoutMs?: number;
}

export interface NativeAddonResult<T> {
  /** The loaded module, or null when unavailable. */
  addon: T | null;
  /** Why the addon is unavailable (one line); undefined when it loaded. */
  error?: string;
  /** Path of the shared object (when it loaded). */
  path?: string;
  /** Whether this call compiled it (false: loaded from the cache). */
  built: boolean;
}

const results = new Map<string, NativeAddonResult<unknown>>();

/** Directory holding `node_api.h`, or undefined. */
export function findNodeApiHeaders(): string | undefined {
  const candidates = [join(dirname(process.execPath), '..', 'include', 'node'), '/usr/include/node', '/usr/local/include/node'];
  return candidates.find((d) => existsSync(join(d, 'node_api.h')));
}

/** The first of `candidates` (paths relative to the directory of the module `importMetaUrl`) that exists. */
export function findSource(importMetaUrl: string, candidates: string[]): string {
  const here = dirname(fileURLToPath(importMetaUrl));
  const found = candidates.map((c) => resolve(here, c)).find((p) => existsSync(p));
  if (!found) throw new Error(`native source not found (looked for ${candidates.join(', ')} next to ${here})`);
  return found;
}

/** The first directory among `dirs` that contains `header`, or undefined. */
export function findIncludeDir(header: string, dirs: string[]): string | undefined {
  return dirs.find((d) => existsSync(join(d, header)));
}

/** The package root (the nearest folder above this module holding package.json). */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    dir = dirname(dir);
  }
  return process.cwd();
}

/** Where addons named `name` are cached. */
export function nativeCacheDir(name: string): string {
  const modules = join(packageRoot(), 'node_modules');
  return existsSync(modules) ? join(modules, '.cache', name) : join(tmpdir(), name);
}

/** Whether an environment variable's value means "off". */
export function envDisabled(value: string | undefined): boolean {
  return value !== undefined && ['0', 'false', 'off', 'no'].includes(value.trim().toLowerCase());
}

/**
 * The CPU's feature flags (Linux), part of the cache key: VMs often report a generic model name ("AMD EPYC"), and a
 * `-march=native` build copied to a CPU without some instruction set (a cached node_modules) would crash, not fail.
 */
function cpuFeatures(): string {
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    return info.split('\n').find((l) => /^(flags|Features)\s*:/.test(l)) ?? '';
  } catch {
    return '';
  }
}

/** Builds (once, cached) and loads a Node-API addon; never throws. See the module comment. */
export function loadNativeAddon<T>(spec: NativeAddonSpec): NativeAddonResult<T> {
  const memo = results.get(spec.name);
  if (memo) return memo as NativeAddonResult<T>;
  let result: NativeAddonResult<T>;
  try {
    result = build<T>(spec);
  } catch (e) {
    const msg = e as Error & { stderr?: Buffer };
    // A compiler error's first line is "Command failed: …"; its diagnostics are on stderr.
    const lines = msg.stderr ? String(msg.stderr).split('\n') : [];
    const detail =
      lines.find((l) => /cannot find|fatal error|undefined reference|No such file/i.test(l)) ??
      lines.find((l) => /error/i.test(l) && !l.startsWith('collect2'));
    result = { addon: null, error: (detail ?? msg.message.split('\n')[0]!).trim(), built: false };
  }
  results.set(spec.name, result);
  return result;
}

function build<T>(spec: NativeAddonSpec): NativeAddonResult<T> {
  if (spec.disableEnv && envDisabled(process.env[spec.disableEnv])) {
    return { addon: null, error: `disabled by ${spec.disableEnv}=${process.env[spec.disableEnv]}`, built: false };
  }
  if (spec.sources.length === 0) throw new Error('no sources');
  const cxx = spec.sources.some((s) => /\.(cc|cpp|cxx)$/.test(s));
  const compiler = spec.compiler ?? (cxx ? (process.env.CXX ?? 'g++') : (process.env.CC ?? 'gcc'));
  const flags = [...(spec.flags ?? ['-O3']), '-shared', '-fPIC'];
  const libs = spec.libs ?? [];
  const includes = (spec.includeDirs ?? []).map((d) => `-I${d}`);
  const hash = createHash('sha256');
  for (const s of [...spec.sources, ...(spec.headers ?? [])]) hash.update(readFileSync(s));
  hash
    .update([compiler, ...flags, ...includes, ...libs].join(' '))
    .update(process.versions.modules)
    .update(process.arch)
    .update(cpus()[0]?.model ?? '')
    .update(cpuFeatures());
  const dir = nativeCacheDir(spec.name);
  const target = join(dir, `${spec.name}-${hash.digest('hex').slice(0, 16)}.node`);
  let built = false;
  if (!existsSync(target)) {
    const headers = findNodeApiHeaders();
    if (!headers) throw new Error('Node-API headers (node_api.h) not found');
    mkdirSync(dir, { recursive: true });
    const tmp = `${target}.${process.pid}.tmp`;
    try {
      execFileSync(compiler, [...flags, `-I${headers}`, ...includes, ...spec.sources, '-o', tmp, ...libs], {
        stdio: 'pipe',
        timeout: spec.timeoutMs ?? 120_000,
      });
      renameSync(tmp, target); // atomic
    } finally {
      rmSync(tmp, { force: true });
    }
    built = true;
    // Older builds of this addon (other sources or flags) are dead weight; unlinking a loaded one is harmless.
    for (const f of readdirSync(dir)) {
      if (f.startsWith(`${spec.name}-`) && f.endsWith('.node') && join(dir, f) !== target) rmSync(join(dir, f), { force: true });
    }
  }
  const mod = createRequire(import.meta.url)(target) as Record<string, unknown>;
  for (const name of spec.exports ?? []) {
    if (typeof mod[name] !== 'function') throw new Error(`${spec.name}: export '${name}' missing`);
  }
  return { addon: mod as T, path: target, built };
}

const OPENBLAS_INCLUDE_DIRS = [
  '/usr/include/x86_64-linux-gnu/openblas-pthread',
  '/usr/include/aarch64-linux-gnu/openblas-pthread',
  '/usr/include/openblas',
  '/usr/include/x86_64-linux-gnu/openblas-openmp',
  '/usr/include/x86_64-linux-gnu',
  '/usr/include/aarch64-linux-gnu',
  '/usr/include',
  '/usr/local/include',
  '/usr/local/opt/openblas/include',
  '/opt/homebrew/opt/openblas/include',
];
const OPENBLAS_LIB_DIRS = [
  '/usr/lib/x86_64-linux-gnu',
  '/usr/lib/aarch64-linux-gnu',
  '/usr/lib64',
  '/usr/lib',
  '/usr/local/lib',
  '/usr/local/opt/openblas/lib',
  '/opt/homebrew/opt/openblas/lib',
];

/**
 * Where OpenBLAS's `cblas.h` and library are (`FHENET_BLAS_INCLUDE` / `FHENET_BLAS_LIBS` override the search);
 * throws a one-line error naming the package to install when they are missing.
 */
export function findOpenBlas(): { include: string; libs: string[] } {
  const include = process.env.FHENET_BLAS_INCLUDE ?? findIncludeDir('cblas.h', OPENBLAS_INCLUDE_DIRS);
  if (!include) throw new Error('OpenBLAS header cblas.h not found (Debian/Ubuntu: apt-get install libopenblas-dev)');
  const libDir = OPENBLAS_LIB_DIRS.find((d) => existsSync(`${d}/libopenblas.so`) || existsSync(`${d}/libopenblas.dylib`));
  if (!libDir && !process.env.FHENET_BLAS_LIBS) {
    throw new Error('OpenBLAS library libopenblas.so not found (Debian/Ubuntu: apt-get install libopenblas-dev)');
  }
  const libs = process.env.FHENET_BLAS_LIBS?.split(/\s+/).filter(Boolean) ?? [`-L${libDir}`, `-Wl,-rpath,${libDir}`, '-lopenblas'];
  return { include, libs };
}
