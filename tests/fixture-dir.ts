/** Where the tests' Brevitas fixtures are: tests/fixtures/brevitas (README and provenance there), or $FHENET_BREVITAS_FIXTURES. */
import { fileURLToPath } from 'node:url';

export const FIXTURE_DIR = process.env.FHENET_BREVITAS_FIXTURES
  ? process.env.FHENET_BREVITAS_FIXTURES.replace(/\/?$/, '/')
  : fileURLToPath(new URL('./fixtures/brevitas/', import.meta.url));
