import { FhenetError } from '../util/errors.js';

/** A model folder is missing, incomplete or not in the Hugging Face layout fhenet reads. */
export class ModelFolderError extends FhenetError {
  override name = 'ModelFolderError';
}
