/**
 * Integer quantization arithmetic shared by every layer that quantizes (the tfjs-side quantizers and PTQ, the ONNX
 * interpreter, exporter and importer, the compiler): one definition of a b-bit quantizer's integer range, of
 * round-half-to-even and of the reference's calibrated activation quantizer. Plain numbers only — no tfjs — so the
 * compiler and the ONNX layer can import it.
 */

/** Round half to even (banker's rounding), as torch.round / numpy.round / ONNX QuantizeLinear. */
export function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** Round half to even (numpy.rint / numpy.round, as Concrete ML rounds), never −0. */
export function rint(x: number): number {
  const r = roundHalfEven(x);
  return r === 0 ? 0 : r;
}

/**
 * Integer bounds [min, max] of a b-bit Brevitas/QONNX quantizer:
 *   signed narrow   [−2^(b−1)+1, 2^(b−1)−1]     signed          [−2^(b−1), 2^(b−1)−1]
 *   unsigned        [0, 2^b−1]                  unsigned narrow [0, 2^b−2]
 */
export function quantBounds(bitWidth: number, signed: boolean, narrow: boolean): [number, number] {
  if (signed) {
    const half = 2 ** (bitWidth - 1);
    return [narrow ? -half + 1 : -half, half - 1];
  }
  const full = 2 ** bitWidth;
  return [0, narrow ? full - 2 : full - 1];
}

/**
 * Concrete ML's op-input (activation) quantizer for calibrated [min, max] at b bits: asymmetric with offset 0,
 * s = (max − min)/(2^b − 1), z = round(−min·(2^b − 1)/(max − min)), integers [0, 2^b − 1]
 * (`UniformQuantizationParameters.compute_quantization_parameters`, quantized_array.py at 1c6f571e / quantizers.py);
 * a (near-)constant range gets s = max (or 1 for 0) and z = 0 there.
 */
export function referenceActParams(min: number, max: number, bits: number): { scale: number; zeroPoint: number } {
  const levels = 2 ** bits - 1;
  if (!(max - min >= 1e-6)) return { scale: Math.abs(max) < 1e-6 ? 1 : max, zeroPoint: 0 };
  const zeroPoint = rint((-min * levels) / (max - min));
  return { scale: (max - min) / levels, zeroPoint: zeroPoint === 0 ? 0 : zeroPoint };
}
