/** Option parsers for commander that reject bad values with a message naming the flag. */
import { InvalidArgumentError } from 'commander';

export function intOption(flag: string, min = -Infinity, max = Infinity): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) {
      const range = max === Infinity ? `≥ ${min}` : `in [${min}, ${max}]`;
      throw new InvalidArgumentError(`${flag} must be an integer ${range}, got '${v}'`);
    }
    return n;
  };
}

export function numberOption(flag: string): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isFinite(n)) throw new InvalidArgumentError(`${flag} must be a number, got '${v}'`);
    return n;
  };
}
