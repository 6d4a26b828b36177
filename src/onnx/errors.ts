/**
 * Typed errors of the ONNX layer.
 *
 * Everything that can go wrong with a model file or an in-memory graph is reported as an
 * {@link OnnxFormatError}; problems found only while evaluating a graph on concrete inputs (a feed with the
 * wrong shape, a tensor that would be too large) are an {@link OnnxRuntimeError}. Both extend {@link OnnxError},
 * so callers that only care "is this the ONNX layer refusing the input" can catch that one class.
 */

import { FhenetError } from '../util/errors.js';

export type OnnxErrorKind =
  | 'decode' // the bytes are not a valid ModelProto
  | 'size' // a size limit was exceeded (file, tensor elements, dims)
  | 'tensor' // a tensor's dtype, dims and data disagree
  | 'attribute' // a missing, mistyped or unsupported attribute value
  | 'unsupported' // an operator, domain, dtype or feature that fhenet does not handle
  | 'missing' // a node input that nothing defines
  | 'cycle' // the node graph is not a DAG
  | 'duplicate' // a value produced twice
  | 'quant' // a quantizer whose parameters are invalid (bit width, rounding mode, ...)
  | 'shape' // incompatible shapes
  | 'export' // a graph that cannot be written in the requested format
  | 'internal'; // a kernel of fhenet's interpreter failed on its own (a bug, not the input's fault)

/** Where in the model the problem is: a node and/or a tensor (value) name. */
export interface OnnxErrorLocation {
  node?: string;
  tensor?: string;
}

export class OnnxError extends FhenetError {
  readonly kind: OnnxErrorKind;
  readonly node?: string;
  readonly tensor?: string;
  constructor(kind: OnnxErrorKind, message: string, where: OnnxErrorLocation = {}) {
    const prefix = [
      where.node !== undefined ? `node '${where.node}'` : undefined,
      where.tensor !== undefined ? `tensor '${where.tensor}'` : undefined,
    ]
      .filter((s) => s !== undefined)
      .join(', ');
    super(prefix ? `${prefix}: ${message}` : message);
    this.name = 'OnnxError';
    this.kind = kind;
    if (where.node !== undefined) this.node = where.node;
    if (where.tensor !== undefined) this.tensor = where.tensor;
  }
}

/** The model file or graph is malformed, too large, or uses something unsupported. */
export class OnnxFormatError extends OnnxError {
  constructor(kind: OnnxErrorKind, message: string, where: OnnxErrorLocation = {}) {
    super(kind, message, where);
    this.name = 'OnnxFormatError';
  }
}

/** Evaluation of a (valid) graph failed for the given inputs. */
export class OnnxRuntimeError extends OnnxError {
  constructor(kind: OnnxErrorKind, message: string, where: OnnxErrorLocation = {}) {
    super(kind, message, where);
    this.name = 'OnnxRuntimeError';
  }
}

/**
 * A kernel of the interpreter threw something other than an OnnxError (a TypeError, a RangeError…): a bug in
 * fhenet or an input the kernel should have refused with a typed error. Still located and one line for a user,
 * but a distinct class so tests (tests/onnx/fuzz.test.ts) can demand there are none.
 */
export class OnnxInternalError extends OnnxRuntimeError {
  constructor(message: string, where: OnnxErrorLocation = {}, override readonly cause?: unknown) {
    super('internal', message, where);
    this.name = 'OnnxInternalError';
  }
}
