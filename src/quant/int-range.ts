/**
 * Integer ranges and thresholds of a b-bit quantizer (QONNX `Quant` / Brevitas IntQuant):
 *   signed narrow   [−2^(b−1)+1, 2^(b−1)−1]     signed   [−2^(b−1), 2^(b−1)−1]
 *   unsigned        [0, 2^b−1]                  unsigned narrow [0, 2^b−2]
 * The scale of a statistics-based quantizer is stat / threshold, threshold = −minInt if signed else maxInt.
 */
import { ConfigError } from '../util/errors.js';
import { quantBounds } from '../util/int-quant.js';

export const MIN_BIT_WIDTH = 1;
export const MAX_BIT_WIDTH = 16;

export interface IntFormat {
  bitWidth: number;
  signed: boolean;
  narrow: boolean;
}

export function checkBitWidth(bitWidth: number, who = 'quantizer'): void {
  if (!Number.isInteger(bitWidth) || bitWidth < MIN_BIT_WIDTH || bitWidth > MAX_BIT_WIDTH) {
    throw new ConfigError(
      `${who}: bit width must be an integer in [${MIN_BIT_WIDTH}, ${MAX_BIT_WIDTH}], got ${bitWidth}`,
    );
  }
}

export function intRange({ bitWidth, signed, narrow }: IntFormat): { min: number; max: number } {
  const [min, max] = quantBounds(bitWidth, signed, narrow);
  return { min, max };
}

export function threshold(fmt: IntFormat): number {
  const { min, max } = intRange(fmt);
  return fmt.signed ? -min : max;
}

/** Validates a format: the range must hold at least two integers (1-bit signed narrow holds only 0). */
export function checkFormat(fmt: IntFormat, who = 'quantizer'): void {
  checkBitWidth(fmt.bitWidth, who);
  const { min, max } = intRange(fmt);
  if (max - min < 1 || threshold(fmt) <= 0) {
    throw new ConfigError(
      `${who}: ${fmt.bitWidth}-bit ${fmt.signed ? 'signed' : 'unsigned'}${fmt.narrow ? ' narrow' : ''} range [${min}, ${max}] cannot represent a scale`,
    );
  }
}
