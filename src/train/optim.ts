/**
 * Optimizers with PyTorch's update rules (torch.optim.SGD, Adam, AdamW), written over tfjs variables so their full
 * state (moments, step count) can be saved in a checkpoint and restored for an exact resume.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError } from '../util/errors.js';

export type NamedParams = [string, tf.Variable][];

export abstract class Optimizer {
  /** Learning rate; schedules write it before each step. */
  lr: number;
  protected stepCount = 0;
  protected readonly slots = new Map<string, tf.Variable>();

  protected constructor(
    protected readonly params: NamedParams,
    lr: number,
  ) {
    if (!(lr > 0)) throw new ConfigError(`learning rate must be positive, got ${lr}`);
    this.lr = lr;
  }

  /** Applies one update given gradients keyed by tfjs variable name (as tf.variableGrads returns them). */
  step(grads: tf.NamedTensorMap): void {
    this.stepCount += 1;
    tf.tidy(() => {
      for (const [name, p] of this.params) {
        const g = grads[p.name];
        if (!g) continue; // a parameter outside the graph (e.g. a learned scale still collecting statistics)
        this.update(name, p, g);
      }
    });
  }

  protected abstract update(name: string, p: tf.Variable, g: tf.Tensor): void;

  protected slot(name: string, kind: string, like: tf.Tensor): tf.Variable {
    const key = `${name}.${kind}`;
    let v = this.slots.get(key);
    if (!v) {
      v = tf.keep(tf.variable(tf.zerosLike(like), false));
      this.slots.set(key, v);
    }
    return v;
  }

  /** Optimizer state as tensors (for safetensors) plus scalars (for JSON metadata). */
  state(): { tensors: Map<string, tf.Tensor>; scalars: { step: number; lr: number } } {
    return { tensors: new Map(this.slots), scalars: { step: this.stepCount, lr: this.lr } };
  }

  loadState(tensors: Map<string, tf.Tensor>, scalars: { step: number; lr: number }): void {
    this.stepCount = scalars.step;
    this.lr = scalars.lr;
    for (const [key, t] of tensors) {
      const existing = this.slots.get(key);
      if (existing) existing.assign(t);
      else {
        // The variable takes its own reference to the clone's data; the clone itself is not needed afterwards.
        const copy = t.clone();
        this.slots.set(key, tf.keep(tf.variable(copy, false)));
        copy.dispose();
      }
    }
  }

  dispose(): void {
    for (const v of this.slots.values()) v.dispose();
    this.slots.clear();
  }
}

export interface SgdOptions {
  lr: number;
  momentum?: number;
  weightDecay?: number;
  nesterov?: boolean;
}

export class SGD extends Optimizer {
  constructor(params: NamedParams, readonly opts: SgdOptions) {
    super(params, opts.lr);
  }

  protected update(name: string, p: tf.Variable, g0: tf.Tensor): void {
    const { momentum = 0, weightDecay = 0, nesterov = false } = this.opts;
    let g = weightDecay ? tf.add(g0, tf.mul(p, weightDecay)) : g0;
    if (momentum) {
      const buf = this.slot(name, 'momentum', p);
      // PyTorch: the first step initialises the buffer with the gradient itself.
      buf.assign(this.stepCount === 1 ? g : tf.add(tf.mul(buf, momentum), g));
      g = nesterov ? tf.add(g, tf.mul(buf, momentum)) : buf;
    }
    p.assign(tf.sub(p, tf.mul(g, this.lr)));
  }
}

export interface AdamOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
}

/** Adam with L2 weight decay added to the gradient (torch.optim.Adam). */
export class Adam extends Optimizer {
  protected readonly beta1: number;
  protected readonly beta2: number;
  protected readonly eps: number;
  protected readonly weightDecay: number;

  constructor(params: NamedParams, opts: AdamOptions = {}, defaultDecay = 0) {
    super(params, opts.lr ?? 1e-3);
    [this.beta1, this.beta2] = opts.betas ?? [0.9, 0.999];
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? defaultDecay;
  }

  protected decay(p: tf.Variable, g: tf.Tensor): tf.Tensor {
    return this.weightDecay ? tf.add(g, tf.mul(p, this.weightDecay)) : g;
  }

  protected update(name: string, p: tf.Variable, g0: tf.Tensor): void {
    const g = this.decay(p, g0);
    const m = this.slot(name, 'exp_avg', p);
    const v = this.slot(name, 'exp_avg_sq', p);
    m.assign(tf.add(tf.mul(m, this.beta1), tf.mul(g, 1 - this.beta1)));
    v.assign(tf.add(tf.mul(v, this.beta2), tf.mul(tf.square(g), 1 - this.beta2)));
    const bc1 = 1 - this.beta1 ** this.stepCount;
    const bc2 = 1 - this.beta2 ** this.stepCount;
    const denom = tf.add(tf.div(tf.sqrt(v), Math.sqrt(bc2)), this.eps);
    p.assign(tf.sub(p, tf.mul(tf.div(m, denom), this.lr / bc1)));
  }
}

/** AdamW: decoupled weight decay p ← p·(1 − lr·wd) before the Adam step (torch.optim.AdamW, wd 0.01). */
export class AdamW extends Adam {
  constructor(params: NamedParams, opts: AdamOptions = {}) {
    super(params, opts, 0.01);
  }

  protected override decay(p: tf.Variable, g: tf.Tensor): tf.Tensor {
    if (this.weightDecay) p.assign(tf.mul(p, 1 - this.lr * this.weightDecay));
    return g;
  }
}

export type OptimizerName = 'sgd' | 'adam' | 'adamw';

export function createOptimizer(
  name: OptimizerName,
  params: NamedParams,
  opts: { lr: number; momentum?: number; weightDecay?: number },
): Optimizer {
  switch (name) {
    case 'sgd':
      return new SGD(params, opts);
    case 'adam':
      return new Adam(params, opts);
    case 'adamw':
      return new AdamW(params, opts);
    default:
      throw new ConfigError(`unknown optimizer '${String(name)}' (sgd, adam or adamw)`);
  }
}
