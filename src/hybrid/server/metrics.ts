/**
 * The server's Prometheus metrics (prom-client: one registry per server, so several servers in one process keep
 * apart; every family has its HELP and TYPE, label values are escaped by the library). Gauges that mirror state
 * (keys cached/stored, computations in flight) are read when scraped.
 */
import { Counter, Gauge, Registry, Summary, collectDefaultMetrics } from 'prom-client';

export interface ServerState {
  keysCached(): number;
  computeInFlight(): number;
  keyStore(): Promise<{ keys: number; storedBytes: number }>;
}

export class ServerMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({ name: 'fhenet_http_requests_total', help: 'HTTP requests by route and status', labelNames: ['route', 'status'], registers: [this.registry] });
  readonly errors = new Counter({ name: 'fhenet_errors_total', help: 'Error answers by error code', labelNames: ['code'], registers: [this.registry] });
  readonly bytesIn = new Counter({ name: 'fhenet_bytes_in_total', help: 'Request body bytes accepted', labelNames: ['route'], registers: [this.registry] });
  readonly bytesOut = new Counter({ name: 'fhenet_bytes_out_total', help: 'Result bytes sent', labelNames: ['route'], registers: [this.registry] });
  readonly computeMs = new Summary({ name: 'fhenet_compute_ms', help: 'Circuit evaluation time of /compute, ms (last 10 minutes)', percentiles: [0.5, 0.99], maxAgeSeconds: 600, ageBuckets: 5, registers: [this.registry] });
  readonly computeRejected = new Counter({ name: 'fhenet_compute_rejected_total', help: 'Computations refused with 429, by cap', labelNames: ['cap'], registers: [this.registry] });
  readonly keysAdded = new Counter({ name: 'fhenet_keys_added_total', help: 'Evaluation keys stored', registers: [this.registry] });
  readonly keyLoads = new Counter({ name: 'fhenet_key_loads_total', help: 'Evaluation keys loaded from the store into memory', registers: [this.registry] });
  readonly keysDeleted = new Counter({ name: 'fhenet_keys_deleted_total', help: 'Evaluation keys deleted, by reason (quota: to make room; ttl: unused too long)', labelNames: ['reason'], registers: [this.registry] });
  readonly keyStoreFull = new Counter({ name: 'fhenet_key_store_full_total', help: 'Uploads refused because every stored key was in use', registers: [this.registry] });

  constructor(state: ServerState) {
    collectDefaultMetrics({ register: this.registry });
    new Gauge({ name: 'fhenet_keys_cached', help: 'Evaluation keys loaded in memory', registers: [this.registry], collect() {
      this.set(state.keysCached());
    } });
    new Gauge({ name: 'fhenet_compute_in_flight', help: 'Computations in flight (from their first body byte to their answer)', registers: [this.registry], collect() {
      this.set(state.computeInFlight());
    } });
    new Gauge({ name: 'fhenet_keys_stored', help: 'Evaluation keys in the key store', registers: [this.registry], async collect() {
      this.set((await state.keyStore()).keys);
    } });
    new Gauge({ name: 'fhenet_key_store_bytes', help: 'Bytes the stored keys occupy, metadata included', registers: [this.registry], async collect() {
      this.set((await state.keyStore()).storedBytes);
    } });
  }

  /** The exposition text and its content type. */
  async scrape(): Promise<{ text: string; contentType: string }> {
    return { text: await this.registry.metrics(), contentType: this.registry.contentType };
  }
}
