/**
 * `tf.tidy` for asynchronous code. `tf.tidy` refuses a Promise because TensorFlow.js tracks the tensors a function
 * creates in one global stack of scopes: two asynchronous computations whose awaits interleave would file each
 * other's tensors under the wrong scope (and free them when the other one ends). `tidyAsync` therefore runs one
 * asynchronous computation at a time per process (first come, first served), each in its own engine scope: every
 * tensor created while it runs is freed when it ends, except the ones in its result. A `tidyAsync` inside another
 * (the same asynchronous call chain, tracked with AsyncLocalStorage) runs at once, in a nested scope.
 *
 * Used by the asynchronous forward of hybrid models (`Module.forwardAsync`), whose awaits are remote computations.
 * Tensors that other code creates *outside* any `tf.tidy` while such a computation awaits are filed under its scope
 * too; create them inside `tf.tidy` (as usual) or after the awaited result.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import * as tf from '@tensorflow/tfjs-core';

let queue: Promise<unknown> = Promise.resolve();
const inside = new AsyncLocalStorage<true>();

async function scoped<T extends tf.TensorContainer>(fn: () => Promise<T>): Promise<T> {
  const engine = tf.engine();
  engine.startScope();
  let result: T | undefined;
  try {
    result = await fn();
    return result;
  } finally {
    engine.endScope(result);
  }
}

export function tidyAsync<T extends tf.TensorContainer>(fn: () => Promise<T>): Promise<T> {
  if (inside.getStore()) return scoped(fn);
  const run = () => inside.run(true, () => scoped(fn));
  const next = queue.then(run, run);
  queue = next.catch(() => undefined);
  return next;
}
