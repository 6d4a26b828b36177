/**
 * A variant of the notebook's QATPrunedSimpleNet with an unsigned input quantizer: the same 1/3 grid as the
 * notebook's signed narrow 3-bit input quantizer (so the same accuracy ceiling on [0, 1] data), but integers in
 * [0, 3] instead of [−3, 3]. Non-negative inputs halve the worst-case accumulator of the first layer for a given
 * weight L1 norm, which matters for accumulator-aware training at small targets. Module names match QuantSimpleNet.
 */
import { uniform } from '../nn/init.js';
import { QuantIdentity, QuantLinear, QuantReLU } from '../quant/layers.js';
import { QuantChain } from '../ptq/module-ptq.js';
import type { QuantizerOptions } from '../quant/quantizer.js';

export function notebookNetUnsignedInput(hidden: number, bits: number): QuantChain {
  const constQ: Partial<QuantizerOptions> = { bitWidth: bits, signed: true, narrow: true, scaling: 'const', maxVal: 1 };
  const weightQuant = { ...constQ, clampSte: true };
  // (b−1)-bit unsigned: integers [0, 2^(b−1) − 1], scale 1/(2^(b−1) − 1) — the notebook's grid for b bits.
  const inputQuant: Partial<QuantizerOptions> = { bitWidth: bits - 1, signed: false, narrow: false, scaling: 'const', maxVal: 1 };
  const fc1 = new QuantLinear(2, hidden, { weightQuant });
  const fc2 = new QuantLinear(hidden, hidden, { weightQuant });
  const fc3 = new QuantLinear(hidden, 2, { weightQuant });
  for (const fc of [fc1, fc2, fc3]) fc.weight.assign(uniform(fc.weight.shape, -1, 1));
  return new QuantChain([
    ['quant_inp', new QuantIdentity({ actQuant: inputQuant })],
    ['fc1', fc1],
    ['relu1', new QuantReLU({ actQuant: constQ })],
    ['fc2', fc2],
    ['relu2', new QuantReLU({ actQuant: constQ })],
    ['fc3', fc3],
  ]);
}
