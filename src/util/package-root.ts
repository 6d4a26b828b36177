/**
 * Where fhenet's own files are: the package root (the nearest folder above this module whose package.json is
 * fhenet's). The same code runs from the TypeScript sources (src/util/) and from the compiled package
 * (dist/src/util/), so files shipped beside the code — package.json, the peer checkerboard arrays — are found by
 * walking up, not by a fixed number of `..`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

export function packageRoot(): string {
  if (cached) return cached;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg) && (JSON.parse(fs.readFileSync(pkg, 'utf8')) as { name?: string }).name === 'fhenet') return (cached = dir);
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`fhenet's package.json not found above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

/** fhenet's package.json fields (name, version). */
export function packageInfo(): { name: string; version: string } {
  return JSON.parse(fs.readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { name: string; version: string };
}
