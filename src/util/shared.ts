/**
 * Locates the read-only reference material (`shared/`: Brevitas fixtures, reference data sets). Looked up in
 * order: $FHENET_SHARED, `../shared` beside the repository, `/work/shared`. Callers get a clear error naming every
 * place searched when it is absent.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FhenetError } from './errors.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export function sharedCandidates(): string[] {
  const c = [path.resolve(REPO_ROOT, '../shared'), '/work/shared'];
  return process.env.FHENET_SHARED ? [process.env.FHENET_SHARED, ...c] : c;
}

/** The path of `rel` inside the shared folder; throws naming every location tried when it is missing. */
export function sharedPath(rel: string): string {
  const tried = sharedCandidates().map((d) => path.join(d, rel));
  const found = tried.find((p) => fs.existsSync(p));
  if (!found) {
    throw new FhenetError(`${rel} not found; looked in ${tried.join(', ')}. Set FHENET_SHARED to the folder that holds it.`);
  }
  return found;
}

export function repoRoot(): string {
  return REPO_ROOT;
}
