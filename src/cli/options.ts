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

/** A comma-separated list of integers ≥ min (e.g. seeds '0,1,2'). */
export function intListOption(name: string, min = -Infinity): (v: string) => number[] {
  return (v) => {
    const xs = v.split(',').map(Number);
    if (!xs.every((x) => Number.isInteger(x) && x >= min)) throw new InvalidArgumentError(`${name} must be comma-separated integers ≥ ${min}, got '${v}'`);
    return xs;
  };
}

/** A JSON object (not an array or a scalar), e.g. config overrides. */
export function jsonObjectOption<T extends object>(name: string): (v: string) => T {
  return (v) => {
    let o: unknown;
    try {
      o = JSON.parse(v);
    } catch (e) {
      throw new InvalidArgumentError(`${name} must be JSON: ${(e as Error).message}`);
    }
    if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new InvalidArgumentError(`${name} must be a JSON object`);
    return o as T;
  };
}
