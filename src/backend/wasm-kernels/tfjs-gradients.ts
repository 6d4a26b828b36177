/**
 * Registers tfjs-core's own gradient functions (Conv2D, Sum, MatMul, Relu, pooling, …) in Node.
 *
 * `@tensorflow/tfjs-core`'s Node bundle (`dist/tf-core.node.js`) registers no gradients at all — only the union
 * package `@tensorflow/tfjs` does, via the ES-module file `dist/register_all_gradients.js`. That file cannot be
 * imported by plain Node: the package is not `"type": "module"` and its relative imports omit the `.js` extension.
 * This module installs a narrow Node module hook (only for relative imports inside `@tensorflow/tfjs-core/dist/`)
 * that adds the extension and loads those files as ES modules, then imports the file. The second copy of tfjs-core
 * this loads shares the first one's engine and kernel/gradient registries (tfjs keeps them on `globalThis`).
 *
 * Idempotent; a no-op once gradients are registered (for example when the union package is loaded).
 */
import * as tf from '@tensorflow/tfjs-core';
import { register } from 'node:module';

const HOOKS = `
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
const DIST = '/@tensorflow/tfjs-core/dist/';
export async function resolve(specifier, context, next) {
  if (context.parentURL && context.parentURL.includes(DIST) && specifier.startsWith('.') && !specifier.endsWith('.js')) {
    const base = fileURLToPath(new URL(specifier, context.parentURL));
    const file = existsSync(base + '.js') ? base + '.js' : base + '/index.js';
    return { url: pathToFileURL(file).href, format: 'module', shortCircuit: true };
  }
  return next(specifier, context);
}
export async function load(url, context, next) {
  if (url.includes(DIST) && !url.endsWith('/tf-core.node.js')) return next(url, { ...context, format: 'module' });
  return next(url, context);
}
`;

let pending: Promise<void> | undefined;

export function registerTfjsGradients(): Promise<void> {
  if (tf.getGradient(tf.Conv2D) && tf.getGradient(tf.Sum)) return Promise.resolve();
  pending ??= (async () => {
    register(`data:text/javascript,${encodeURIComponent(HOOKS)}`);
    const spec = '@tensorflow/tfjs-core/dist/register_all_gradients.js';
    await import(spec);
    if (!tf.getGradient(tf.Conv2D)) throw new Error('registering tfjs-core gradients failed');
  })();
  return pending;
}
