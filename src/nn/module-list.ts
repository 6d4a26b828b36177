/**
 * `ModuleList` (torch.nn.ModuleList): holds sub-modules under the names "0", "1", … so their parameters are named
 * `h.0.attn.c_attn.weight` as in PyTorch. It has no forward of its own; the owner iterates it.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError } from '../util/errors.js';
import { Module } from './module.js';
import type { Activation } from './quant-tensor.js';

export class ModuleList<M extends Module = Module> extends Module implements Iterable<M> {
  private readonly items: M[] = [];

  constructor(modules: Iterable<M> = []) {
    super();
    for (const m of modules) this.append(m);
  }

  append(module: M): this {
    this.addModule(String(this.items.length), module);
    this.items.push(module);
    return this;
  }

  get length(): number {
    return this.items.length;
  }

  /** The module at index i as currently registered (a `setModule` replacement is returned, as PyTorch does). */
  at(i: number): M {
    if (!Number.isInteger(i) || i < 0 || i >= this.items.length) {
      throw new ConfigError(`${this.label()}: index ${i} out of range [0, ${this.items.length})`);
    }
    return this.getModule(String(i)) as M;
  }

  *[Symbol.iterator](): Iterator<M> {
    for (let i = 0; i < this.items.length; i++) yield this.at(i);
  }

  forward(_x: Activation): tf.Tensor {
    throw new ConfigError(`${this.label()}: a ModuleList has no forward; call its modules`);
  }
}
