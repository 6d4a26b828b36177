#!/usr/bin/env node
// The `fhenet` command. In a source checkout (src/ present, tsx installed as a dev dependency) it runs the TypeScript
// sources through tsx, so a clone works after `npm ci` with no build step and never runs a stale build; in the
// installed package (no src/) it runs the compiled JavaScript in dist/.
import { existsSync } from 'node:fs';

const source = new URL('../src/cli/main.ts', import.meta.url);
let tsx;
if (existsSync(source)) {
  try {
    tsx = await import('tsx/esm/api');
  } catch {
    tsx = undefined; // no dev dependencies: fall back to the build
  }
}
if (tsx) {
  tsx.register();
  await import(source.href);
} else {
  await import(new URL('../dist/src/cli/main.js', import.meta.url).href);
}
