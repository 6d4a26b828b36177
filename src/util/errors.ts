/**
 * Errors a user can act on. Every check that guards user input throws one of these with a message naming the
 * module, tensor or option involved and what was expected, instead of letting a shape error surface deep in tfjs.
 */
export class FhenetError extends Error {
  override name = 'FhenetError';
}

/** A tensor had the wrong rank or size for the layer it was given to. */
export class ShapeError extends FhenetError {
  override name = 'ShapeError';
}

/** A configuration value (bit width, option, name) is out of range or unknown. */
export class ConfigError extends FhenetError {
  override name = 'ConfigError';
}

/** A checkpoint or state dict does not match the model it is loaded into. */
export class StateDictError extends FhenetError {
  override name = 'StateDictError';
}
