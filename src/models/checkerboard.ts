/**
 * The checkerboard networks of the reference guide and notebook (shared/reference/concrete-ml.md §1).
 * Module names follow the reference (fc1, relu1, …) so reports, checkpoints and hybrid module names line up.
 */
import { Linear, ReLU } from '../nn/layers.js';
import { Module } from '../nn/module.js';
import type { Activation } from '../nn/quant-tensor.js';
import { QuantIdentity, QuantLinear, QuantReLU } from '../quant/layers.js';
import type { QuantizerOptions } from '../quant/quantizer.js';
import { uniform } from '../nn/init.js';
import type { Rng } from '../util/rng.js';

/** Float SimpleNet: Linear(2,h) → ReLU → Linear(h,h) → ReLU → Linear(h,2). */
export class SimpleNet extends Module {
  readonly fc1: Linear;
  readonly relu1 = this.addModule('relu1', new ReLU());
  readonly fc2: Linear;
  readonly relu2: ReLU;
  readonly fc3: Linear;

  constructor(hidden = 100, rng?: Rng) {
    super();
    this.fc1 = this.addModule('fc1', new Linear(2, hidden, { rng }));
    this.fc2 = this.addModule('fc2', new Linear(hidden, hidden, { rng }));
    this.relu2 = this.addModule('relu2', new ReLU());
    this.fc3 = this.addModule('fc3', new Linear(hidden, 2, { rng }));
  }

  forward(x: Activation): Activation {
    return this.fc3.call(this.relu2.call(this.fc2.call(this.relu1.call(this.fc1.call(x)))));
  }

  /** `forward` with every layer awaited (any layer may be remote in a hybrid model). */
  override async forwardAsync(x: Activation): Promise<Activation> {
    const h1 = await this.relu1.callAsync(await this.fc1.callAsync(x));
    return this.fc3.callAsync(await this.relu2.callAsync(await this.fc2.callAsync(h1)));
  }
}

export interface QuantSimpleNetOptions {
  hidden?: number;
  /** Bit width of weights, input and activations (the reference uses 3). */
  bits?: number;
  /**
   * `notebook`: every quantizer signed, narrow, constant scale — input and activations max 1, weights max 1
   * (scale 1/(2^(b−1)−1)), weights initialised U(−1, 1) — the QATPrunedSimpleNet of the notebook.
   * `brevitas`: Brevitas defaults at `bits` (learned activation scales, abs-max weight scales) — the guide's
   * QuantSimpleNet (Int8WeightPerTensorFloat narrow, Int8ActPerTensorFloat input, Uint8ActPerTensorFloat ReLUs, all
   * at `bits`), whose weights the guide also initialises U(−1, 1).
   */
  scales?: 'notebook' | 'brevitas';
  rng?: Rng;
}

/** QuantIdentity → QuantLinear(2,h) → QuantReLU → QuantLinear(h,h) → QuantReLU → QuantLinear(h,2). */
export class QuantSimpleNet extends Module {
  readonly quantInp: QuantIdentity;
  readonly fc1: QuantLinear;
  readonly relu1: QuantReLU;
  readonly fc2: QuantLinear;
  readonly relu2: QuantReLU;
  readonly fc3: QuantLinear;

  constructor(opts: QuantSimpleNetOptions = {}) {
    super();
    const { hidden = 100, bits = 3, scales = 'notebook', rng } = opts;
    const constQ = (signed: boolean): Partial<QuantizerOptions> => ({ bitWidth: bits, signed, narrow: true, scaling: 'const', maxVal: 1 });
    const notebook = scales === 'notebook';
    const weightQuant = notebook ? { ...constQ(true), clampSte: true } : { bitWidth: bits };
    const actQuant = notebook ? constQ(true) : { bitWidth: bits };
    this.quantInp = this.addModule('quant_inp', new QuantIdentity({ actQuant }));
    this.fc1 = this.addModule('fc1', new QuantLinear(2, hidden, { weightQuant, rng }));
    this.relu1 = this.addModule('relu1', new QuantReLU({ actQuant }));
    this.fc2 = this.addModule('fc2', new QuantLinear(hidden, hidden, { weightQuant, rng }));
    this.relu2 = this.addModule('relu2', new QuantReLU({ actQuant }));
    this.fc3 = this.addModule('fc3', new QuantLinear(hidden, 2, { weightQuant, rng }));
    // Both the notebook and the guide initialise every QuantLinear weight U(−1, 1) (torch.nn.init.uniform_): for the
    // notebook's constant weight scale this spans the weight range; for the guide's abs-max scale it sets the size
    // of the first activations relative to the (PyTorch-default) biases.
    for (const fc of [this.fc1, this.fc2, this.fc3]) fc.weight.assign(uniform(fc.weight.shape, -1, 1, rng));
  }

  forward(x: Activation): Activation {
    const h1 = this.relu1.call(this.fc1.call(this.quantInp.call(x)));
    const h2 = this.relu2.call(this.fc2.call(h1));
    return this.fc3.call(h2);
  }

  /** `forward` with every layer awaited (any layer may be remote in a hybrid model). */
  override async forwardAsync(x: Activation): Promise<Activation> {
    const h1 = await this.relu1.callAsync(await this.fc1.callAsync(await this.quantInp.callAsync(x)));
    const h2 = await this.relu2.callAsync(await this.fc2.callAsync(h1));
    return this.fc3.callAsync(h2);
  }
}
