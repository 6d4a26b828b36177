/**
 * `Module`: the PyTorch `nn.Module` habits on TensorFlow.js. A module owns parameters (trainable variables),
 * buffers (state that is saved but not trained: BatchNorm statistics, quantizer statistics) and child modules,
 * addressed by PyTorch-style dotted names ("seq.0", "fc2.weight"). The hybrid model addresses remote layers by
 * these names, and checkpoints use them as tensor keys, so they must match what PyTorch would print.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, ShapeError, StateDictError } from '../util/errors.js';
import type { Activation } from './quant-tensor.js';

export type ForwardHook = (module: Module, input: Activation, output: Activation) => void;

export abstract class Module {
  /** Training mode (batch statistics, quantizer statistics collection) vs evaluation mode. */
  training = true;
  private readonly children = new Map<string, Module>();
  private readonly params = new Map<string, tf.Variable>();
  private readonly buffers = new Map<string, tf.Variable>();
  private readonly hooks = new Set<ForwardHook>();
  private parent: Module | undefined;
  private nameInParent = '';

  abstract forward(x: Activation): Activation;

  /** Runs `forward` and then any forward hooks (used for calibration and hybrid capture). */
  call(x: Activation): Activation {
    const y = this.forward(x);
    for (const hook of this.hooks) hook(this, x, y);
    return y;
  }

  /**
   * The asynchronous forward, for module trees in which some module's result arrives asynchronously (a hybrid
   * model's remote layers: an HTTP round trip or an encrypted computation). It computes exactly what `forward`
   * computes, in one pass. The default runs `forward`, which is right for every module whose children all answer
   * synchronously. A module that calls children which may be asynchronous overrides it with the same body, each
   * `child.call(x)` written `await child.callAsync(x)` (see `Sequential`).
   */
  async forwardAsync(x: Activation): Promise<Activation> {
    return this.forward(x);
  }

  /** `call` for the asynchronous forward: awaits `forwardAsync`, then runs the forward hooks. */
  async callAsync(x: Activation): Promise<Activation> {
    const y = await this.forwardAsync(x);
    for (const hook of this.hooks) hook(this, x, y);
    return y;
  }

  /** True when this module's class provides its own `forwardAsync` (not the default that runs `forward`). */
  hasOwnForwardAsync(): boolean {
    return this.forwardAsync !== Module.prototype.forwardAsync;
  }

  registerForwardHook(hook: ForwardHook): () => void {
    this.hooks.add(hook);
    return () => this.hooks.delete(hook);
  }

  /** Registers (or replaces) a child module under `name`. */
  protected addModule<M extends Module>(name: string, module: M): M {
    checkName(name);
    module.parent = this;
    module.nameInParent = name;
    this.children.set(name, module);
    return module;
  }

  protected addParameter(name: string, init: tf.Tensor): tf.Variable {
    checkName(name);
    const v = tf.variable(init, true);
    if (v !== init) init.dispose();
    this.params.set(name, v);
    return v;
  }

  protected addBuffer(name: string, init: tf.Tensor): tf.Variable {
    checkName(name);
    const v = tf.variable(init, false);
    if (v !== init) init.dispose();
    this.buffers.set(name, v);
    return v;
  }

  /** Drops a buffer (and frees its variable); used when a pruning mask is made permanent. */
  protected removeBuffer(name: string): void {
    const v = this.buffers.get(name);
    if (!v) return;
    this.buffers.delete(name);
    v.dispose();
  }

  /** The dotted path of this module from the root it is attached to ('' for the root). */
  path(): string {
    if (!this.parent) return '';
    const up = this.parent.path();
    return up ? `${up}.${this.nameInParent}` : this.nameInParent;
  }

  /** A label for error messages: class name and path. */
  protected label(): string {
    const p = this.path();
    return p ? `${this.constructor.name} '${p}'` : this.constructor.name;
  }

  /** All modules, depth first, the root first with name ''. */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [name, child] of this.children) {
      out.push(...child.namedModules(prefix ? `${prefix}.${name}` : name));
    }
    return out;
  }

  /**
   * The child registered under `name` now: after `setModule` this is the replacement, while a field that kept the
   * original still points at the old one. Forward passes that must honour replacements look children up here.
   */
  protected child(name: string): Module {
    const m = this.children.get(name);
    if (!m) throw new ConfigError(`${this.label()} has no child '${name}'`);
    return m;
  }

  namedChildren(): [string, Module][] {
    return [...this.children];
  }

  /** Looks a module up by its dotted name; unknown names are an error listing the valid ones. */
  getModule(name: string): Module {
    if (name === '') return this;
    const found = this.namedModules().find(([n]) => n === name);
    if (!found) {
      const known = this.namedModules().map(([n]) => n).filter((n) => n !== '');
      throw new ConfigError(`no module named '${name}'; modules are: ${known.join(', ') || '(none)'}`);
    }
    return found[1];
  }

  /** Replaces the module at a dotted name (how a hybrid model swaps a layer for a remote one). */
  setModule(name: string, module: Module): void {
    const cut = name.lastIndexOf('.');
    const owner = cut < 0 ? this : this.getModule(name.slice(0, cut));
    const leaf = name.slice(cut + 1);
    if (!owner.children.has(leaf)) this.getModule(name); // throws with the list of names
    owner.addModule(leaf, module);
  }

  namedParameters(prefix = ''): [string, tf.Variable][] {
    return this.collect(prefix, (m) => m.params);
  }

  parameters(): tf.Variable[] {
    return this.namedParameters().map(([, v]) => v);
  }

  namedBuffers(prefix = ''): [string, tf.Variable][] {
    return this.collect(prefix, (m) => m.buffers);
  }

  private collect(prefix: string, pick: (m: Module) => Map<string, tf.Variable>): [string, tf.Variable][] {
    const out: [string, tf.Variable][] = [];
    for (const [modName, m] of this.namedModules(prefix)) {
      for (const [n, v] of pick(m)) out.push([modName ? `${modName}.${n}` : n, v]);
    }
    return out;
  }

  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Parameters and buffers by dotted name (the live variables; clone before mutating). */
  stateDict(): Map<string, tf.Tensor> {
    const out = new Map<string, tf.Tensor>();
    for (const [modName, m] of this.namedModules()) {
      for (const [n, v] of [...m.params, ...m.buffers]) out.set(modName ? `${modName}.${n}` : n, v);
    }
    return out;
  }

  /**
   * Copies tensors into the model's variables. With `strict` (the default) every key must match and nothing may be
   * missing; shapes must always match. Errors list every problem at once, not just the first.
   */
  loadStateDict(state: Map<string, tf.Tensor> | Record<string, tf.Tensor>, { strict = true } = {}): void {
    const entries = state instanceof Map ? state : new Map(Object.entries(state));
    const own = this.stateDict();
    const problems: string[] = [];
    for (const [name, t] of entries) {
      const v = own.get(name);
      if (!v) {
        if (strict) problems.push(`unexpected key '${name}'`);
        continue;
      }
      if (!sameShape(v.shape, t.shape)) {
        problems.push(`'${name}' has shape [${t.shape}] but the model expects [${v.shape}]`);
      }
    }
    if (strict) {
      for (const name of own.keys()) if (!entries.has(name)) problems.push(`missing key '${name}'`);
    }
    if (problems.length) {
      throw new StateDictError(`state dict does not match ${this.constructor.name}: ${problems.join('; ')}`);
    }
    for (const [name, t] of entries) {
      const v = own.get(name) as tf.Variable | undefined;
      if (v) v.assign(t.dtype === v.dtype ? t : tf.cast(t, v.dtype));
    }
    for (const [, m] of this.namedModules()) m.afterLoad();
  }

  /** Called on every module after `loadStateDict`, to resynchronise state mirrored outside variables. */
  protected afterLoad(): void {}

  /** Frees every variable of this module tree. */
  dispose(): void {
    for (const [, m] of this.namedModules()) {
      for (const v of [...m.params.values(), ...m.buffers.values()]) v.dispose();
    }
  }
}

function checkName(name: string): void {
  if (!/^[A-Za-z0-9_]+$/.test(name)) throw new ConfigError(`invalid module/parameter name '${name}'`);
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Checks rank and (optionally) the size of the last/channel axis, with a message naming the layer. */
export function expectShape(
  who: string,
  x: tf.Tensor,
  rank: number | number[],
  axis?: { index: number; size: number; what: string },
): void {
  const ranks = Array.isArray(rank) ? rank : [rank];
  if (!ranks.includes(x.rank)) {
    throw new ShapeError(`${who} expects a rank-${ranks.join(' or ')} input, got shape [${x.shape}]`);
  }
  if (axis) {
    const i = axis.index < 0 ? x.rank + axis.index : axis.index;
    if (x.shape[i] !== axis.size) {
      throw new ShapeError(`${who} expects ${axis.size} ${axis.what}, got shape [${x.shape}] (axis ${i} is ${x.shape[i]})`);
    }
  }
}
