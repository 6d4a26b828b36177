import { FhenetError } from '../util/errors.js';

/**
 * A graph the compiler cannot turn into a circuit. The message names the node (ONNX name, which for exported
 * fhenet modules is the module path), what was found, and what would fix it.
 */
export class CompileError extends FhenetError {
  override name = 'CompileError';
  constructor(
    readonly node: string,
    message: string,
    readonly fix?: string,
  ) {
    super(`node '${node}': ${message}${fix ? ` — ${fix}` : ''}`);
  }
}
