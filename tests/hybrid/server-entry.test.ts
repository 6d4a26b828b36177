/**
 * `fhenet/hybrid/server` must load without TensorFlow.js (a model server installs no tfjs backend and should not pay
 * for loading one). Each import runs in a fresh Node process; the CommonJS module cache (tfjs-core's Node build is
 * CommonJS) and tfjs-core's global engine tell whether anything from `@tensorflow` was loaded. The control import
 * (`fhenet/hybrid`, which exports the tfjs-based HybridFHEModel) shows the probe does see tfjs when it is loaded.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

function tensorflowModulesAfterImporting(specifier: string): string[] {
  const script = `
    import { createRequire } from 'node:module';
    const m = await import(${JSON.stringify(specifier)});
    if (Object.keys(m).length === 0) throw new Error('empty module');
    const loaded = Object.keys(createRequire(import.meta.url).cache).filter((k) => k.includes('@tensorflow'));
    if (globalThis._tfengine !== undefined) loaded.push('globalThis._tfengine');
    console.log(JSON.stringify(loaded));
  `;
  const r = spawnSync(process.execPath, ['--conditions=fhenet-source', '--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000, cwd: process.cwd() });
  if (r.status !== 0) throw new Error(`import ${specifier} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as string[];
}

describe('fhenet/hybrid/server entry point', () => {
  it('loads no @tensorflow module', () => {
    expect(tensorflowModulesAfterImporting('fhenet/hybrid/server')).toEqual([]);
  }, 60_000);

  it('the PBS worker of `fhenet worker` (src/scale/pbs-worker.ts) loads no @tensorflow module', () => {
    expect(tensorflowModulesAfterImporting(new URL('../../src/scale/pbs-worker.ts', import.meta.url).href)).toEqual([]);
  }, 60_000);

  it('exports the server (buildServer, serve, FHEModelServer, the key store)', async () => {
    const m = await import('../../src/hybrid/server/index.js');
    expect(typeof m.buildServer).toBe('function');
    expect(typeof m.serve).toBe('function');
    expect(typeof m.FHEModelServer).toBe('function');
  });

  it('control: the probe sees tfjs when fhenet/hybrid (HybridFHEModel) is imported', () => {
    expect(tensorflowModulesAfterImporting('fhenet/hybrid').length).toBeGreaterThan(0);
  }, 60_000);
});
