/** Module.forwardAsync / callAsync and tidyAsync (src/nn/tidy-async.ts), the pieces of the single-pass hybrid forward. */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/backend/index.js';
import { manualSeed } from '../../src/nn/init.js';
import { Linear, ReLU, Sequential } from '../../src/nn/layers.js';
import { Module } from '../../src/nn/module.js';
import type { Activation } from '../../src/nn/quant-tensor.js';
import { tidyAsync } from '../../src/nn/tidy-async.js';

beforeAll(async () => {
  await initBackend();
});

const tick = () => new Promise((r) => setTimeout(r, 2));

describe('Module.forwardAsync', () => {
  it('defaults to forward, Sequential awaits its children, callAsync runs the hooks, overrides are detected', async () => {
    manualSeed(1);
    class Slow extends Module {
      constructor(readonly inner: Module) {
        super();
      }
      forward(x: Activation): Activation {
        return this.inner.call(x);
      }
      override async forwardAsync(x: Activation): Promise<Activation> {
        await tick();
        return this.inner.call(x);
      }
    }
    const seq = new Sequential(new Linear(3, 4), new ReLU(), new Slow(new Linear(4, 2)));
    const x = tf.tensor2d([[1, -2, 3], [0.5, 0, -1]]);
    let hooks = 0;
    seq.registerForwardHook(() => hooks++);
    const sync = Array.from((seq.call(x) as tf.Tensor).dataSync());
    const y = (await seq.callAsync(x)) as tf.Tensor;
    expect(Array.from(y.dataSync())).toEqual(sync);
    expect(hooks).toBe(2);
    expect(seq.hasOwnForwardAsync()).toBe(true);
    expect(seq.at(0).hasOwnForwardAsync()).toBe(false);
    expect(seq.at(2).hasOwnForwardAsync()).toBe(true);
  });
});

describe('tidyAsync', () => {
  it('frees what the computation allocated except its result, across awaits', async () => {
    const before = tf.memory().numTensors;
    const y = await tidyAsync(async () => {
      const a = tf.ones([4]);
      await tick();
      const b = tf.add(a, a);
      await tick();
      return tf.mul(b, 3);
    });
    expect(Array.from(y.dataSync())).toEqual([6, 6, 6, 6]);
    expect(tf.memory().numTensors).toBe(before + 1);
    y.dispose();
  });

  it('runs concurrent computations one at a time, and a nested one at once (no deadlock)', async () => {
    const events: string[] = [];
    const job = (name: string) =>
      tidyAsync(async () => {
        events.push(`${name} start`);
        await tick();
        const inner = await tidyAsync(async () => tf.scalar(1)); // nested: runs inside, not queued behind itself
        await tick();
        events.push(`${name} end`);
        return inner;
      });
    const before = tf.memory().numTensors;
    const out = await Promise.all([job('a'), job('b')]);
    expect(events).toEqual(['a start', 'a end', 'b start', 'b end']);
    expect(tf.memory().numTensors).toBe(before + 2);
    tf.dispose(out);
  });

  it('a failing computation releases its tensors and does not block the next', async () => {
    const before = tf.memory().numTensors;
    await expect(
      tidyAsync(async () => {
        tf.ones([3]);
        await tick();
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(tf.memory().numTensors).toBe(before);
    const y = await tidyAsync(async () => tf.scalar(2));
    y.dispose();
  });
});
