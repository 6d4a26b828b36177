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
  log2PError: number;
};

try {
  const sk = ServerKey.fromExpanded(init.params, init.ksk, init.bsk, { backend: init.backend, log2PError: init.log2PError });
  parentPort!.on('message', (msg: { id: number; data: Uint32Array; lut: Float64Array; variance: number }) => {
    try {
      const out = sk.pbs(new LweCiphertext(msg.data, msg.variance, 1, 0), { poly: msg.lut, degree: 0, values: [] });
      parentPort!.postMessage({ id: msg.id, data: out.data }, [out.data.buffer as ArrayBuffer]);
    } catch (e) {
      parentPort!.postMessage({ id: msg.id, error: (e as Error).message });
    }
  });
  parentPort!.postMessage({ ready: true });
} catch (e) {
  parentPort!.postMessage({ error: (e as Error).message });
}
