/** Worker thread of PbsPool: rebuilds a ServerKey around the shared expanded key, runs PBS. */
import { parentPort, workerData } from 'node:worker_threads';
import { LweCiphertext } from './lwe.js';
import { ServerKey } from './server-key.js';
import type { KeyswitchKey } from './keyswitch.js';
import type { FourierBootstrapKey } from './pbs.js';
import type { TfheParams } from './params.js';

const init = workerData as {
  params: TfheParams;
  ksk: KeyswitchKey;
  bsk: FourierBootstrapKey;
  backend: 'native' | 'typescript';
  transform: 'fftw' | 'shared';
  log2PError: number;
};

try {
  const sk = ServerKey.fromExpanded(init.params, init.ksk, init.bsk, { backend: init.backend, transform: init.transform, log2PError: init.log2PError });
  parentPort!.on('message', (msg: { id: number; data: Uint32Array[]; variance: number[]; luts: Float64Array[] }) => {
    try {
      const cts = msg.data.map((d, i) => new LweCiphertext(d, msg.variance[i]!, 1, 0));
      const luts = msg.luts.map((poly) => ({ poly, degree: 0, values: [] }));
      const outs = sk.pbsBatch(cts, luts);
      parentPort!.postMessage({ id: msg.id, data: outs.map((o) => o.data) }, outs.map((o) => o.data.buffer as ArrayBuffer));
    } catch (e) {
      parentPort!.postMessage({ id: msg.id, error: (e as Error).message });
    }
  });
  parentPort!.postMessage({ ready: true });
} catch (e) {
  parentPort!.postMessage({ error: (e as Error).message });
}
