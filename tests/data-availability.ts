/**
 * Whether the real data sets some tests need are stored (`fhenet data fetch cifar10 | fashion-mnist`, or Debian's
 * dataset-fashion-mnist). Absent data makes those tests skip with the reason printed; with FHENET_REQUIRE_DATA=1
 * (set by .ci/run, which provisions both) absent data is an error instead, so CI cannot skip them silently.
 */
import * as fs from 'node:fs';
import { findCifar10 } from '../datasets/cifar10/index.js';
import { DEBIAN_FASHION_MNIST_DIR, fashionMnistCandidates, loadFashionMnist } from '../datasets/fashion-mnist/index.js';
import { DataMissingError } from '../src/data/errors.js';

function verdict(what: string, missing: string | undefined): string | undefined {
  if (missing === undefined) return undefined;
  if (process.env.FHENET_REQUIRE_DATA === '1') throw new Error(`FHENET_REQUIRE_DATA=1 but ${missing}`);
  console.warn(`skipping ${what}: ${missing}`);
  return missing;
}

/** Undefined when CIFAR-10 can be loaded; else why not (and the test skips). */
export function cifar10SkipReason(what: string): string | undefined {
  return verdict(what, findCifar10() ? undefined : 'CIFAR-10 is not stored (run `fhenet data fetch cifar10`, or set FHENET_CIFAR10)');
}

/** Undefined when Fashion-MNIST can be loaded; else why not. */
export function fashionMnistSkipReason(what: string): string | undefined {
  try {
    loadFashionMnist({ limitTrain: 1, limitTest: 1 });
    return verdict(what, undefined);
  } catch (e) {
    if (!(e instanceof DataMissingError)) throw e;
    return verdict(what, `Fashion-MNIST is not stored in ${fashionMnistCandidates().join(', ')} (run \`fhenet data fetch fashion-mnist\`, or apt-get install dataset-fashion-mnist)`);
  }
}

/** Undefined when Debian's dataset-fashion-mnist package is installed; else why not. */
export function debianFashionMnistSkipReason(what: string): string | undefined {
  return verdict(what, fs.existsSync(DEBIAN_FASHION_MNIST_DIR) ? undefined : `${DEBIAN_FASHION_MNIST_DIR} is absent (apt-get install dataset-fashion-mnist)`);
}
