/**
 * The one folder where `fhenet data` stores data sets: $FHENET_DATA, or `datasets` in the user's cache folder
 * (env-paths: ~/.cache/fhenet/datasets on Linux, ~/Library/Caches/fhenet/datasets on macOS,
 * %LOCALAPPDATA%\fhenet\Cache\datasets on Windows). Each data set has a subfolder named after it.
 */
import * as path from 'node:path';
import envPaths from 'env-paths';

export function dataDir(): string {
  const env = process.env.FHENET_DATA;
  if (env) return path.resolve(env);
  return path.join(envPaths('fhenet', { suffix: '' }).cache, 'datasets');
}

/** The folder of one data set (`cifar10`, `fashion-mnist`). */
export function datasetDir(name: string): string {
  return path.join(dataDir(), name);
}
