/**
 * The encrypted modes of a hybrid model, per remote module and input shape:
 * - 'execute': client and server in this process (FHEModelClient + FHEModelServer from the dev artefacts): quantize
 *   → encrypt → serialize → evaluate → serialize → decrypt → dequantize, no HTTP;
 * - 'remote': the same against `fhenet serve` over HTTP. A session (client artefact fetched, keys generated,
 *   evaluation keys uploaded → uid) is opened at the first call and shared by concurrent calls. A uid the server
 *   has deleted (key budget, time to live) is answered by uploading the same evaluation keys again under a new uid
 *   and retrying once.
 * Every call and key generation is reported (`calls`, `keyReports`). tfjs-free.
 */
import { FHEModelClient, type FHEModelDev, FHEModelServer } from './deployment.js';
import type { RemoteClient } from './remote-client.js';
import { HybridError, RemoteCallError } from './errors.js';

/** Per key generation (one per remote module and shape, at the first execute/remote call). */
export interface KeyReport {
  module: string;
  shape: string;
  /** Serialized evaluation-key bytes (uploaded once per uid in 'remote'). */
  bytes: number;
  keygenMs: number;
  /** /add_key round trip ('remote') or the local key load ('execute'). */
  uploadMs: number;
}

/** Per remote call: what crossed the wire and how long it took. */
export interface RemoteCallReport {
  module: string;
  shape: string;
  n: number;
  bytesSent: number;
  bytesReceived: number;
  /** Round trip of the /compute request ('execute': the in-process evaluation). */
  httpMs: number;
  /** Quantize + encrypt + serialize, and deserialize + decrypt + dequantize, on the client. */
  encryptMs: number;
  decryptMs: number;
  totalMs: number;
}

interface LocalPair {
  client: FHEModelClient;
  server: FHEModelServer;
  key: unknown;
}

interface Session {
  client: FHEModelClient;
  uid: string;
}

const MAX_REPORTS = 10_000;
const slot = (module: string, shape: string) => `${module}\u0000${shape}`;

export class EncryptedCalls {
  /** Reports of remote/execute calls, oldest first (bounded to the last 10,000). */
  readonly calls: RemoteCallReport[] = [];
  /** Key generations of execute/remote sessions, oldest first. */
  readonly keyReports: KeyReport[] = [];
  private readonly local = new Map<string, Promise<LocalPair>>();
  private readonly sessions = new Map<string, Promise<Session>>();

  /** `endpoint()` gives the HTTP client and model name of 'remote' (throws when no server is configured). */
  constructor(private readonly endpoint: () => { http: RemoteClient; modelName: string }) {}

  /** 'execute': `dev` holds the module's circuit artefacts for this shape. */
  async execute(module: string, shape: string, dev: FHEModelDev | undefined, input: Float32Array, n: number): Promise<Float32Array> {
    const id = slot(module, shape);
    let pair = this.local.get(id);
    if (!pair) {
      if (!dev) throw new HybridError(`'execute' needs the circuit of '${module}', which was cleared on this side; use 'remote'`);
      pair = (async () => {
        const client = FHEModelClient.fromArtefact(dev.clientArtefact);
        const server = FHEModelServer.fromBytes(dev.serverBytes);
        const k0 = performance.now();
        await client.generatePrivateAndEvaluationKeysAsync();
        const evalKey = client.getSerializedEvaluationKeys();
        const k1 = performance.now();
        const key = await server.loadKeyAsync(evalKey);
        this.keyReports.push({ module, shape, bytes: evalKey.length, keygenMs: k1 - k0, uploadMs: performance.now() - k1 });
        return { client, server, key };
      })();
      this.local.set(id, pair);
      pair.catch(() => this.local.delete(id));
    }
    const loc = await pair;
    const t0 = performance.now();
    const ct = loc.client.quantizeEncryptSerialize(input, n);
    const t1 = performance.now();
    const res = await loc.server.runAsync(ct, { handle: loc.key });
    const t2 = performance.now();
    const out = loc.client.deserializeDecryptDequantize(res, n).output;
    const t3 = performance.now();
    this.report({ module, shape, n, bytesSent: ct.length, bytesReceived: res.length, httpMs: t2 - t1, encryptMs: t1 - t0, decryptMs: t3 - t2, totalMs: t3 - t0 });
    return out;
  }

  /** 'remote': one POST /compute (after opening the session at the first call). */
  async remote(module: string, shape: string, input: Float32Array, n: number): Promise<Float32Array> {
    const { http, modelName } = this.endpoint();
    const id = slot(module, shape);
    let ses = this.sessions.get(id);
    if (!ses) {
      ses = (async () => {
        const client = FHEModelClient.fromArtefact(await http.getClient(modelName, module, shape));
        const k0 = performance.now();
        await client.generatePrivateAndEvaluationKeysAsync();
        const evalKey = client.getSerializedEvaluationKeys();
        const k1 = performance.now();
        const uid = await http.addKey(modelName, module, shape, evalKey);
        this.keyReports.push({ module, shape, bytes: evalKey.length, keygenMs: k1 - k0, uploadMs: performance.now() - k1 });
        return { client, uid };
      })();
      this.sessions.set(id, ses);
      ses.catch(() => this.sessions.delete(id));
    }
    const { client, uid } = await ses;
    const t0 = performance.now();
    const ct = client.quantizeEncryptSerialize(input, n);
    const t1 = performance.now();
    let res: Awaited<ReturnType<RemoteClient['compute']>>;
    try {
      res = await http.compute(uid, modelName, module, shape, ct);
    } catch (e) {
      if (!(e instanceof RemoteCallError && e.code === 'unknown_uid')) throw e;
      res = await http.compute((await this.reupload(id, ses, client, http, modelName, module, shape)).uid, modelName, module, shape, ct);
    }
    const { bytes, stats } = res;
    const t2 = performance.now();
    const out = client.deserializeDecryptDequantize(bytes, n).output;
    const t3 = performance.now();
    this.report({ module, shape, n, bytesSent: stats.bytesSent, bytesReceived: stats.bytesReceived, httpMs: stats.ms, encryptMs: t1 - t0, decryptMs: t3 - t2, totalMs: t3 - t0 });
    return out;
  }

  /** The same evaluation keys under a new uid (no new key generation); concurrent calls that lost the same uid share one upload. */
  private async reupload(id: string, lost: Promise<Session>, client: FHEModelClient, http: RemoteClient, modelName: string, module: string, shape: string): Promise<Session> {
    const current = this.sessions.get(id);
    const shared = current && current !== lost ? await current.catch(() => undefined) : undefined;
    if (current && shared?.client === client) return current;
    const again = (async () => {
      const evalKey = client.getSerializedEvaluationKeys();
      const k1 = performance.now();
      const uid = await http.addKey(modelName, module, shape, evalKey);
      this.keyReports.push({ module, shape, bytes: evalKey.length, keygenMs: 0, uploadMs: performance.now() - k1 });
      return { client, uid };
    })();
    this.sessions.set(id, again);
    again.catch(() => this.sessions.delete(id));
    return again;
  }

  report(r: RemoteCallReport): void {
    this.calls.push(r);
    if (this.calls.length > MAX_REPORTS) this.calls.splice(0, MAX_REPORTS / 2);
  }

  /** The uid a remote module/shape registered on the server (undefined before its first remote call). */
  async uidOf(module: string, shape: string): Promise<string | undefined> {
    const s = this.sessions.get(slot(module, shape));
    return s ? (await s).uid : undefined;
  }

  /** Forget server sessions (keys are uploaded again at the next remote call). */
  resetRemoteSessions(): void {
    for (const ses of this.sessions.values()) ses.then((x) => x.client.dispose(), () => undefined);
    this.sessions.clear();
  }

  /** Releases the in-process keys of 'execute' (all modules, or one). */
  async dropLocal(module?: string): Promise<void> {
    const dropped = [...this.local].filter(([id]) => module === undefined || id.startsWith(slot(module, '')));
    for (const [id] of dropped) this.local.delete(id);
    for (const [, pair] of dropped) {
      const loc = await pair.catch(() => undefined);
      if (!loc) continue;
      loc.client.dispose();
      await loc.server.disposeKey(loc.key).catch(() => undefined);
    }
  }

  /** Releases keys and worker threads of 'execute' and the client keys of 'remote' sessions. */
  async close(): Promise<void> {
    await this.dropLocal();
    this.resetRemoteSessions();
  }
}
