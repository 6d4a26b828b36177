/**
 * Typed errors of the packed GLWE engine. The server parses bytes sent by clients, so every refusal is one of
 * these (never a RangeError from a typed array): a request handler can answer it as a client error.
 */
import { FhenetError } from '../util/errors.js';

export class GlweError extends FhenetError {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** Bytes that do not follow the documented layout (bad magic, wrong version tag, truncated, trailing bytes). */
export class GlweFormatError extends GlweError {}

/** Well-formed data whose parameters or dimensions do not match the key, layout or matrix it is used with. */
export class GlweParameterError extends GlweError {}

/** A declared size is beyond the limits the caller set (checked before anything is allocated or parsed). */
export class GlweLimitError extends GlweError {}
