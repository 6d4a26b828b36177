/**
 * Errors of the hybrid deployment layer. Each carries the HTTP status the server answers with, so a client mistake
 * (bad bytes, unknown uid, wrong shape) is always a 4xx with a message, never a 500.
 */
import { FhenetError } from '../util/errors.js';

export class HybridError extends FhenetError {
  override name = 'HybridError';
  constructor(
    message: string,
    /** HTTP status the server uses for this error (400 unless said otherwise). */
    readonly statusCode = 400,
    /** Stable machine-readable code (e.g. 'bad_ciphertext', 'unknown_uid'). */
    readonly code = 'bad_request',
  ) {
    super(message);
  }
}

/** An artefact written by an incompatible fhenet version or format. */
export class ArtefactVersionError extends HybridError {
  override name = 'ArtefactVersionError';
  constructor(message: string) {
    super(message, 400, 'version_mismatch');
  }
}

/** A non-2xx answer from an fhenet server, with the server's JSON error. */
export class RemoteCallError extends HybridError {
  override name = 'RemoteCallError';
}
