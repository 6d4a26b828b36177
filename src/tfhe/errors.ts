/**
 * Typed errors of the TFHE runtime.
 *
 * The server side handles bytes sent by clients, so every failure on such bytes must surface as one
 * of these classes (never a RangeError from a typed array, never a crash) so that a request handler
 * can answer it as a client error without guessing.
 */

import { FhenetError } from '../util/errors.js';

/** Base class: anything the TFHE layer refuses on purpose. */
export class TfheError extends FhenetError {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** Bytes that do not follow the expected bincode layout (truncated, corrupted, absurd lengths). */
export class TfheFormatError extends TfheError {
  /** Dotted path of the field being read when the problem was found, e.g. `ciphertext.data.len`. */
  readonly field: string;
  /** Byte offset in the input where the field starts. */
  readonly offset: number;
  constructor(field: string, offset: number, message: string) {
    super(`${field} (byte ${offset}): ${message}`);
    this.field = field;
    this.offset = offset;
  }
}

/** Well-formed data whose parameters do not match what this key / this call expects. */
export class TfheParameterError extends TfheError {}

/** An operation whose result would carry more noise than the parameter set's budget allows. */
export class TfheNoiseError extends TfheError {}

/** A size or memory limit set by the caller would be exceeded. */
export class TfheLimitError extends TfheError {}
