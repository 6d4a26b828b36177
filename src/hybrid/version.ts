/** Versions written into every hybrid artefact and checked when one is loaded. */
import { CIRCUIT_FORMAT } from '../compiler/circuit.js';
import { packageInfo } from '../util/package-root.js';
import { ArtefactVersionError } from './errors.js';

export const FHENET_VERSION: string = packageInfo().version;

/** Client artefact (JSON): quantizers, shapes, backend, circuit id. No weights. */
export const CLIENT_ARTEFACT_FORMAT = 'fhenet-hybrid-client/1';
/** Server artefact: an fhenet circuit (safetensors) with these metadata keys added. */
export const SERVER_ARTEFACT_FORMAT = 'fhenet-hybrid-server/1';
/** Client model manifest (hybrid.json next to the cleared state dict). */
export const HYBRID_MANIFEST_FORMAT = 'fhenet-hybrid/1';

/** Major.minor of an fhenet version (0.x releases break on minor, like semver for 0.x). */
function compatKey(v: string): string {
  const [maj = '0', min = '0'] = v.split('.');
  return maj === '0' ? `0.${min}` : maj;
}

/** Throws unless `format` is what this build reads and `version` is compatible with this build. */
export function checkVersion(what: string, format: unknown, expected: string, version: unknown): void {
  if (format !== expected) {
    throw new ArtefactVersionError(`${what}: format '${String(format)}' is not '${expected}' (written by another fhenet version or not an fhenet artefact)`);
  }
  if (typeof version !== 'string' || compatKey(version) !== compatKey(FHENET_VERSION)) {
    throw new ArtefactVersionError(`${what}: written by fhenet ${String(version)}, this is fhenet ${FHENET_VERSION} (incompatible)`);
  }
}

export { CIRCUIT_FORMAT };

/**
 * The hybrid LLM server artefact: `<model>/llm/linear.safetensors` (int8 weights, per-channel scales and float bias
 * of the remote linear layers; /1 had no scales or bias: the client added the bias).
 */
export const LLM_SERVER_FORMAT = 'fhenet-hybrid-llm-server/2';
export const LLM_SERVER_DIR = 'llm';
export const LLM_SERVER_FILE = 'linear.safetensors';
