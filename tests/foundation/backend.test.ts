import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { BACKEND_ORDER, describeBackend, initBackend } from '../../src/backend/index.js';

describe('backend selection', () => {
  it('tries node-gpu, node, wasm, cpu in order and reports why earlier ones were skipped', async () => {
    expect(BACKEND_ORDER).toEqual(['node-gpu', 'node', 'wasm', 'cpu']);
    const info = await initBackend();
    // tfjs-node(-gpu) are optional peers that cannot install here; the first available wins.
    expect(['node-gpu', 'node', 'wasm']).toContain(info.choice);
    for (const s of info.skipped) expect(s.reason.length).toBeGreaterThan(0);
    expect(describeBackend(info)).toContain(info.choice);
    expect(tf.getBackend()).toBe(info.tfBackend);
  });

  it('FHENET_BACKEND / force pins one backend', async () => {
    const info = await initBackend('cpu');
    expect(info.choice).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    const w = await initBackend('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(w.skipped).toEqual([]);
  });

  it('an unknown or unavailable forced backend is an error, not a silent fallback', async () => {
    await expect(initBackend('tpu')).rejects.toThrow(/not a backend; choose one of node-gpu, node, wasm, cpu/);
    await expect(initBackend('node-gpu')).rejects.toThrow(/requested but could not be loaded/);
  });
});
