/** Errors of data-set download, verification and lookup (all user-actionable: the message says what to do). */
import { FhenetError } from '../util/errors.js';

/** A data set (or one of its files) is not stored where fhenet looks. */
export class DataMissingError extends FhenetError {
  override name = 'DataMissingError';
}

/** A file's SHA-256 or size is not what the data set's registry says. */
export class ChecksumError extends FhenetError {
  override name = 'ChecksumError';
}

/** A download failed (HTTP status, connection cut, too many bytes). */
export class DownloadError extends FhenetError {
  override name = 'DownloadError';
}
