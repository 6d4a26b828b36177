/** Times the CIFAR-10 load: first (decode JPEGs + write cache) and second (cache). `npx tsx experiments/cifar/load-timing.ts` */
import '../../src/util/script-errors.js'; // a FhenetError ends the script with one line, as in the CLI
import { loadCifar10 } from '../../datasets/cifar10/index.js';
for (const run of ['first', 'second']) {
  const t0 = performance.now();
  const d = await loadCifar10();
  const s = ((performance.now() - t0) / 1000).toFixed(2);
  const counts = Array(10).fill(0);
  for (const l of d.train.labels) counts[l]++;
  console.log(`${run} load: ${s} s — ${d.train.labels.length} train, ${d.test.labels.length} test, source ${d.source}; train per class ${counts.join(',')}`);
}
