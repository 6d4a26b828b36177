/** Piscina worker: each thread initialises its own tfjs backend once, then runs configurations. */
import { initBackend } from '../backend/index.js';
import type { RunConfig } from './config.js';
import { type RunResult, runConfig } from './run.js';

const ready = initBackend();

export default async function run(config: RunConfig): Promise<RunResult & { backend: string }> {
  const info = await ready;
  return { ...(await runConfig(config)), backend: info.choice };
}
