import { AvgPool2d, BatchNorm2d, Flatten, Sequential } from '../../src/nn/layers.js';
import { QuantConv2d, QuantIdentity, QuantLinear } from '../../src/quant/layers.js';

/** QuantIdentity → QuantConv2d → BN → QuantIdentity → AvgPool → QuantIdentity → Flatten → QuantLinear. */
export function smallCnn(): Sequential {
  return new Sequential(
    new QuantIdentity({ bitWidth: 8 }),
    new QuantConv2d(3, 4, 3, { padding: 1, bias: false, weightBitWidth: 4 }),
    new BatchNorm2d(4),
    new QuantIdentity({ bitWidth: 4 }),
    new AvgPool2d(2),
    new QuantIdentity({ bitWidth: 4 }),
    new Flatten(),
    new QuantLinear(64, 10, { weightBitWidth: 4 }),
  );
}

