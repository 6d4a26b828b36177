/**
 * The encrypted modes of dynamically quantized remote linear layers (the hybrid LLM path), for all layers of one
 * model with ONE client key:
 * - 'execute': the linear backend's client and server in this process (the layers' weights prepared once);
 * - 'remote': `/llm/add_key` once (→ uid), then one `POST /llm/linear` per layer call carrying the encrypted
 *   centred integers of every token of the batch. A uid the server no longer knows (restart, eviction) is answered by
 *   uploading the same key again and retrying once.
 * The per-token scales s_x go with each call, in clear: the server adds the layer's bias with them (the client never
 * holds a remote layer's bias); the client dequantizes y = s_x · s_w · acc' with the layer's per-channel scales s_w
 * (dynamic-quant.ts), quantizing with s_x ≥ the layer's published `tokenScaleFloor`. tfjs-free.
 */
import { type QuantizedLinear, type QuantizedTokens, dequantizeOutput, quantizeTokens } from './dynamic-quant.js';
import { type ClientLayer, type LinearClientKeys, layerTag, linearClientBackend, linearServerBackend, tokenScaleFloorOf } from './linear-backend.js';
import type { RemoteClient } from './remote-client.js';
import { HybridError, RemoteCallError } from './errors.js';
import type { KeyReport, RemoteCallReport } from './encrypted-calls.js';

/** What the client knows of a remote linear layer: no weight matrix, no bias; the per-channel weight scales s_w. */
export interface LinearLayerSpec extends ClientLayer {
  scales: Float32Array;
}

interface LocalServer {
  keys: LinearClientKeys;
  serverKey: unknown;
  prepared: Map<string, unknown>;
}

export class LinearCalls {
  private local: Promise<LocalServer> | undefined;
  private session: Promise<{ keys: LinearClientKeys; uid: string }> | undefined;

  constructor(
    private readonly backend: () => string,
    private readonly endpoint: () => { http: RemoteClient; modelName: string },
    private readonly reports: { calls: RemoteCallReport[]; keyReports: KeyReport[]; report(r: RemoteCallReport): void },
  ) {}

  /** 'execute': `layer` holds the weights (model owner's side). */
  async execute(modelName: string, name: string, layer: QuantizedLinear | undefined, x: Float32Array, tokens: number): Promise<Float32Array> {
    if (!layer?.weights.length) throw new HybridError(`'execute' needs the weights of '${name}', which were cleared on this side; use 'remote'`);
    if (!this.local) {
      const backend = this.backend();
      this.local = (async () => {
        const k0 = performance.now();
        const keys = await linearClientBackend(backend).generateKeys();
        const server = linearServerBackend(backend);
        // In process the key object goes to the server directly when the backend allows (no wire format, no size).
        const local = keys.localKey && server.loadLocalKey ? keys.localKey() : undefined;
        const evalKey = local === undefined ? keys.evaluationKey() : undefined;
        const k1 = performance.now();
        const serverKey = await (local === undefined ? server.parseKey(evalKey!) : server.loadLocalKey!(local));
        this.reports.keyReports.push({ module: '*', shape: 'linear', bytes: evalKey?.length ?? 0, keygenMs: k1 - k0, uploadMs: performance.now() - k1 });
        return { keys, serverKey, prepared: new Map() };
      })();
      this.local.catch(() => (this.local = undefined));
    }
    const loc = await this.local;
    const server = linearServerBackend(this.backend());
    let entry = loc.prepared.get(name) as { prepared: unknown; spec: LinearLayerSpec } | undefined;
    if (!entry) loc.prepared.set(name, (entry = { prepared: server.prepare(layer), spec: { inFeatures: layer.inFeatures, outFeatures: layer.outFeatures, scales: layer.scales, info: server.clientInfo?.(layer) } }));
    const { prepared, spec } = entry;
    const tag = layerTag(modelName, name);
    const t0 = performance.now();
    const q = quantizeTokens(x, tokens, layer.inFeatures, tokenScaleFloorOf(spec));
    const ct = await loc.keys.encrypt(q.values, q.scales, tokens, spec, tag);
    const t1 = performance.now();
    const res = await server.matVec(loc.serverKey, prepared, layer, ct, tag);
    const t2 = performance.now();
    const out = await this.finish(loc.keys, res, q, spec, tokens, tag);
    const t3 = performance.now();
    this.reports.report({ module: name, shape: String(layer.inFeatures), n: tokens, bytesSent: ct.length, bytesReceived: res.length, httpMs: t2 - t1, encryptMs: t1 - t0, decryptMs: t3 - t2, totalMs: t3 - t0 });
    return out;
  }

  /** 'remote': one POST /llm/linear. */
  async remote(name: string, spec: LinearLayerSpec, x: Float32Array, tokens: number): Promise<Float32Array> {
    const { http, modelName } = this.endpoint();
    if (!this.session) {
      const backend = this.backend();
      this.session = (async () => {
        const k0 = performance.now();
        const keys = await linearClientBackend(backend).generateKeys();
        const evalKey = keys.evaluationKey();
        const k1 = performance.now();
        const uid = await http.llmAddKey(modelName, evalKey);
        this.reports.keyReports.push({ module: '*', shape: 'linear', bytes: evalKey.length, keygenMs: k1 - k0, uploadMs: performance.now() - k1 });
        return { keys, uid };
      })();
      this.session.catch(() => (this.session = undefined));
    }
    const ses = this.session;
    const { keys, uid } = await ses;
    const tag = layerTag(modelName, name);
    const t0 = performance.now();
    const q = quantizeTokens(x, tokens, spec.inFeatures, tokenScaleFloorOf(spec));
    const ct = await keys.encrypt(q.values, q.scales, tokens, spec, tag);
    const t1 = performance.now();
    let res: Awaited<ReturnType<RemoteClient['llmLinear']>>;
    try {
      res = await http.llmLinear(uid, modelName, name, tokens, ct);
    } catch (e) {
      if (!(e instanceof RemoteCallError && e.code === 'unknown_uid')) throw e;
      if (this.session === ses) {
        this.session = (async () => ({ keys, uid: await http.llmAddKey(modelName, keys.evaluationKey()) }))();
        this.session.catch(() => (this.session = undefined));
      }
      res = await http.llmLinear((await this.session!).uid, modelName, name, tokens, ct);
    }
    const t2 = performance.now();
    const out = await this.finish(keys, res.bytes, q, spec, tokens, tag);
    const t3 = performance.now();
    this.reports.report({ module: name, shape: String(spec.inFeatures), n: tokens, bytesSent: res.stats.bytesSent, bytesReceived: res.stats.bytesReceived, httpMs: res.stats.ms, encryptMs: t1 - t0, decryptMs: t3 - t2, totalMs: t3 - t0 });
    return out;
  }

  private async finish(keys: LinearClientKeys, bytes: Uint8Array, q: QuantizedTokens, spec: LinearLayerSpec, tokens: number, tag: Uint8Array): Promise<Float32Array> {
    const acc = await keys.decrypt(bytes, tokens, spec, tag);
    return dequantizeOutput(acc, q.scales, spec.scales);
  }

  /** The uid of the remote session (undefined before the first remote call). */
  async uid(): Promise<string | undefined> {
    return this.session ? (await this.session).uid : undefined;
  }

  async close(): Promise<void> {
    const loc = this.local;
    const ses = this.session;
    this.local = undefined;
    this.session = undefined;
    const l = await loc?.catch(() => undefined);
    if (l) {
      l.keys.dispose?.();
      await linearServerBackend(this.backend()).disposeKey?.(l.serverKey);
    }
    (await ses?.catch(() => undefined))?.keys.dispose?.();
  }
}
