/**
 * Tests carry their own data (issue #21): no code, test, script or notebook may read the developers' reference folder
 * (`../shared`, `/work/shared`, `$FHENET_SHARED`). Fixtures live in tests/fixtures/, data sets in the data folder
 * (`fhenet data fetch`). CI also runs the data-dependent tests from a copy of the checkout with no ../shared beside it
 * (.ci/run).
 */
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';

const root = path.resolve(import.meta.dirname, '../..');
const SCANNED = ['src', 'tests', 'datasets', 'experiments', 'bench', 'scripts', 'bin', 'notebooks', '.ci'];
const CODE = /\.(ts|mjs|js|sh|ipynb|json)$|^run$/;
const PATTERNS = [/\.\.\/shared\b/, /\/work\/shared\b/, /FHENET_SHARED/, /sharedPath|sharedCandidates/];

function files(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return e.name === 'node_modules' || e.name === 'results' ? [] : files(p);
    return CODE.test(e.name) ? [p] : [];
  });
}

describe('no reads of the reference folder', () => {
  it('no source, test, script, notebook or CI file names ../shared, /work/shared or FHENET_SHARED', () => {
    const self = path.join(root, 'tests/foundation/no-shared-folder.test.ts');
    const hits: string[] = [];
    for (const f of SCANNED.flatMap((d) => files(path.join(root, d)))) {
      if (f === self) continue;
      // Notebooks: the cells (their stored outputs record past runs).
      const text = f.endsWith('.ipynb')
        ? (JSON.parse(fs.readFileSync(f, 'utf8')) as { cells: { source: string[] }[] }).cells.map((c) => c.source.join('')).join('\n')
        : fs.readFileSync(f, 'utf8');
      text.split('\n').forEach((line, i) => {
        // Comments may cite the reference notes as sources of facts; only code can read a folder.
        const shell = f.endsWith('.sh') || f.endsWith(`${path.sep}run`);
        if (!f.endsWith('.ipynb') && (shell ? /^\s*#/ : /^\s*(\*|\/\/|\/\*)/).test(line)) return;
        // Shell lines may point FHENET_SHARED at an empty folder (CI, scripts/test-without-shared.sh): setting it is not reading it.
        if (shell && /FHENET_SHARED=/.test(line) && !/\.\.\/shared|\/work\/shared/.test(line)) return;
        // CI may provision data *from* the reference folder with `fhenet data fetch --from` (as a user would from a download).
        if (f.endsWith(`${path.sep}.ci${path.sep}run`) && /fhenet data fetch /.test(line)) return;
        if (PATTERNS.some((p) => p.test(line))) hits.push(`${path.relative(root, f)}:${i + 1}: ${line.trim()}`);
      });
    }
    expect(hits).toEqual([]);
  });
});
