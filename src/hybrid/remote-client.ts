/**
 * HTTP client of the fhenet model server (Node's fetch, keep-alive HTTP/1.1: the transport bench/llm-transport.ts
 * chose). Counts bytes sent/received and latency of every call. tfjs-free.
 *
 * Timeouts: fetch's own default gives up on an answer after 300 s (undici's headersTimeout), and an encrypted layer
 * on many tokens can take longer on a busy server (a 128-token GPT-2 window under load did: experiments/hybrid-llm/
 * RESULTS.md); so the wait is `timeoutMs` (default one hour), and a timeout says so rather than "fetch failed".
 */
import { Agent } from 'undici';
import { RemoteCallError } from './errors.js';

/** How long a call may wait for the server's answer, and between two chunks of it, by default (ms). */
export const DEFAULT_REMOTE_TIMEOUT_MS = 3_600_000;

/** fetch's error → the underlying cause's code and message (fetch itself only says "fetch failed"). */
function causeOf(e: unknown): { code?: string; text: string } {
  const c = (e as { cause?: { code?: string; message?: string } }).cause;
  return { code: c?.code, text: c ? `${c.code ? `${c.code}: ` : ''}${c.message ?? String(c)}` : (e as Error).message };
}

export interface CallStats {
  route: string;
  bytesSent: number;
  bytesReceived: number;
  ms: number;
}

export class RemoteClient {
  readonly baseUrl: string;
  /** Every call, oldest first (bounded to the last 10,000). */
  readonly calls: CallStats[] = [];

  private readonly authorization: string | undefined;
  private readonly timeoutMs: number;
  private readonly dispatcher: Agent;

  /**
   * `token`: the bearer token of a server started with `--token-file`; `timeoutMs`: how long a call may wait for the
   * answer (and between two chunks of it) before it fails with 504 `timeout`.
   */
  constructor(baseUrl: string, opts: { token?: string; timeoutMs?: number } = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
    this.authorization = opts.token === undefined ? undefined : `Bearer ${opts.token}`;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_REMOTE_TIMEOUT_MS;
    this.dispatcher = new Agent({ headersTimeout: this.timeoutMs, bodyTimeout: this.timeoutMs });
  }

  private async call(method: 'GET' | 'POST', route: string, query: Record<string, string>, body?: Uint8Array): Promise<{ bytes: Uint8Array; stats: CallStats }> {
    const url = `${this.baseUrl}${route}?${new URLSearchParams(query).toString()}`;
    const t0 = performance.now();
    const headers: Record<string, string> = {};
    if (body) headers['content-type'] = 'application/octet-stream';
    if (this.authorization) headers.authorization = this.authorization;
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers,
        body: body ? Buffer.from(body.buffer, body.byteOffset, body.byteLength) : undefined,
        // undici's Agent is the dispatcher Node's fetch is built on (same version as Node 20's bundled one)
        dispatcher: this.dispatcher as unknown as RequestInit['dispatcher'],
      } as RequestInit);
    } catch (e) {
      throw this.failure(method, route, e);
    }
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(await res.arrayBuffer());
    } catch (e) {
      throw this.failure(method, route, e);
    }
    const stats: CallStats = { route, bytesSent: body?.length ?? 0, bytesReceived: bytes.length, ms: performance.now() - t0 };
    this.calls.push(stats);
    if (this.calls.length > 10_000) this.calls.splice(0, 5_000);
    if (!res.ok) {
      let msg = Buffer.from(bytes).toString('utf8');
      let code = 'http_error';
      try {
        const j = JSON.parse(msg) as { message?: string; code?: string };
        msg = j.message ?? msg;
        code = j.code ?? code;
      } catch {
        /* not JSON */
      }
      throw new RemoteCallError(`${method} ${route} → ${res.status}: ${msg}`, res.status, code);
    }
    return { bytes, stats };
  }

  private failure(method: string, route: string, e: unknown): RemoteCallError {
    const { code, text } = causeOf(e);
    if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
      return new RemoteCallError(
        `${method} ${route}: no answer from ${this.baseUrl} within ${this.timeoutMs / 1000} s (${text}); the server may be overloaded: send fewer tokens per request, or raise timeoutMs`,
        504,
        'timeout',
      );
    }
    return new RemoteCallError(`${method} ${route}: cannot reach ${this.baseUrl} (${text})`, 503, 'unreachable');
  }

  private async json<T>(route: string, query: Record<string, string> = {}): Promise<T> {
    const { bytes } = await this.call('GET', route, query);
    return JSON.parse(Buffer.from(bytes).toString('utf8')) as T;
  }

  listModels(): Promise<{ models: string[] }> {
    return this.json('/list_models');
  }

  listModules(model: string): Promise<{ modules: string[] }> {
    return this.json('/list_modules', { model_name: model });
  }

  listShapes(model: string, module: string): Promise<{ shapes: string[] }> {
    return this.json('/list_shapes', { model_name: model, module_name: module });
  }

  async getClient(model: string, module: string, shape: string): Promise<Uint8Array> {
    return (await this.call('GET', '/get_client', { model_name: model, module_name: module, input_shape: shape })).bytes;
  }

  async addKey(model: string, module: string, shape: string, key: Uint8Array): Promise<string> {
    const { bytes } = await this.call('POST', '/add_key', { model_name: model, module_name: module, input_shape: shape }, key);
    return (JSON.parse(Buffer.from(bytes).toString('utf8')) as { uid: string }).uid;
  }

  async compute(uid: string, model: string, module: string, shape: string, ciphertext: Uint8Array): Promise<{ bytes: Uint8Array; stats: CallStats }> {
    return this.call('POST', '/compute', { uid, model_name: model, module_name: module, input_shape: shape }, ciphertext);
  }

  // ---- hybrid LLM routes (llm-routes.ts): one key per client for every linear layer of a model ----

  /** Uploads the client's linear-layer evaluation key → its uid. */
  async llmAddKey(model: string, key: Uint8Array): Promise<string> {
    const { bytes } = await this.call('POST', '/llm/add_key', { model_name: model }, key);
    return (JSON.parse(Buffer.from(bytes).toString('utf8')) as { uid: string }).uid;
  }

  /** One remote linear layer on the encrypted tokens of a batch. */
  llmLinear(uid: string, model: string, layer: string, tokens: number, ciphertext: Uint8Array): Promise<{ bytes: Uint8Array; stats: CallStats }> {
    return this.call('POST', '/llm/linear', { uid, model_name: model, layer, tokens: String(tokens) }, ciphertext);
  }
}
