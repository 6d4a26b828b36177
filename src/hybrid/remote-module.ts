/**
 * `RemoteModule`: what a remote module becomes inside the client's model. It has no parameters and no weights; its
 * forward hands the input to the hybrid model (`RemoteRunner`), which answers in the current mode — in clear
 * (disable, simulate), in-process through the crypto backend (execute) or over HTTP (remote).
 *
 * Both forwards of `Module` are served: `forwardAsync` in every mode (what `HybridFHEModel.forward` uses: one pass
 * of the model, one remote call per remote module), and the synchronous `forward` in the modes that compute in clear
 * (calibration and plain `model.call(x)` in 'simulate' stay possible).
 */
import { Module } from '../nn/module.js';
import type { Activation } from '../nn/quant-tensor.js';

export interface RemoteRunner {
  /** The modules' answer in a mode that computes synchronously (float, calibrate, disable, simulate). */
  runSync(name: string, x: Activation): Activation;
  /** The modules' answer in every mode. */
  runAsync(name: string, x: Activation): Promise<Activation>;
}

export class RemoteModule extends Module {
  constructor(
    private readonly runner: RemoteRunner,
    readonly remoteName: string,
  ) {
    super();
  }

  forward(x: Activation): Activation {
    return this.runner.runSync(this.remoteName, x);
  }

  override forwardAsync(x: Activation): Promise<Activation> {
    return this.runner.runAsync(this.remoteName, x);
  }
}
