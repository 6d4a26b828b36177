/**
 * Accumulator rounding before table lookups (Concrete ML's `rounding_threshold_bits`), and two refinements of it that
 * keep every table input at the same width:
 *
 * - per channel: the rounding is chosen from each channel's own calibrated range. A channel whose accumulators span
 *   fewer bits than the layer's widest channel rounds away fewer of them (k_ch ≤ k). Same table width, same PBS
 *   count; in TFHE the channel's ciphertext is multiplied by 2^(k − k_ch) before the bootstrap, which multiplies its
 *   noise by the same factor (the executor's plan checks it). The channel's range is moved (by whole rounding steps,
 *   through its offset) to the middle of the table's domain, so that only its span counts, not where it lies.
 * - aligned: a per-channel clear offset o is added before rounding, chosen so that the rounding steps fall where the
 *   table's output changes. A table after a 2-bit activation is a staircase with three steps; rounding with k bits
 *   moves each step to the nearest multiple of 2^k, misclassifying the accumulators in between. The offset (free in
 *   TFHE: a plaintext added to the body) is picked to minimise Σ_x count(x)·|f(round(x)) − f(x)| over the calibration
 *   set's accumulators x, i.e. the table-output error the rounding causes on data like the calibration set.
 *
 * Neither is in Concrete ML; both default to off so that `roundingThresholdBits: n` reproduces its rounding.
 */
import { type IntRange, bitsFor } from './circuit.js';
import { CompileError } from './errors.js';

export interface RoundingSpec {
  /** Table input width after rounding. */
  bits: number;
  /**
   * Concrete ML's option. The clear circuit rounds to nearest either way. 'approximate' tables get one spare entry
   * past each end of their rounded range (rounding one more bit away when that would widen the table; with the
   * refinements, past each channel's) and are
   * marked so that the TFHE executor gives them the noise margin of their own width, not of the accumulator's,
   * accepting index ± 1 near rounding boundaries (docs/tfhe.md).
   */
  method: 'exact' | 'approximate';
  /** Choose the bits rounded away per channel from each channel's range. */
  perChannel: boolean;
  /** Per-channel offsets aligning rounding steps with the table's steps (needs calibration histograms). */
  align: boolean;
  /**
   * Per-channel rounding: each channel's calibrated range is widened by this fraction of its span at both ends
   * before its k is chosen (default PER_CHANNEL_HEADROOM): less rounds away fewer bits, but test values past the
   * widened range wrap around the table.
   */
  headroom: number;
}

export type RoundingOption = number | { bits: number; method?: 'exact' | 'approximate'; perChannel?: boolean; align?: boolean; headroom?: number };

const ROUNDING_KEYS = ['bits', 'method', 'perChannel', 'align', 'headroom'];

/**
 * Per-channel rounding widens each channel's calibrated range by this fraction of its span (both ends) before choosing
 * its rounding, unless the spec says otherwise. A quarter is the safe default for small calibration sets: on the CNV
 * (experiments/cifar/RESULTS.md) 2,000 test images had 215 table inputs wrap past their channel's domain with none
 * and none with 0.25. Less headroom rounds away fewer bits at the cost of rare wraps; on the CIFAR CNV with 300
 * calibration images 0.05 is better (chosen on held-out training images by experiments/cifar/choose-headroom.ts).
 */
export const PER_CHANNEL_HEADROOM = 0.25;

export function roundingSpec(opt: RoundingOption | undefined): RoundingSpec | undefined {
  if (opt === undefined) return undefined;
  const r = typeof opt === 'number' ? { bits: opt } : opt;
  if (typeof r !== 'object' || r === null) throw new CompileError('options', `roundingThresholdBits must be a number or { bits, method?, perChannel?, align?, headroom? }`);
  const unknown = Object.keys(r).filter((k) => !ROUNDING_KEYS.includes(k));
  if (unknown.length) throw new CompileError('options', `roundingThresholdBits: unknown key(s) ${unknown.join(', ')} (known: ${ROUNDING_KEYS.join(', ')})`);
  if (!Number.isInteger(r.bits) || r.bits < 1 || r.bits > 16) throw new CompileError('options', `roundingThresholdBits must be an integer in [1, 16], got ${r.bits}`);
  const method = 'method' in r && r.method !== undefined ? r.method : 'exact';
  if (method !== 'exact' && method !== 'approximate') throw new CompileError('options', `roundingThresholdBits.method must be 'exact' or 'approximate', got '${String(method)}'`);
  const perChannel = 'perChannel' in r ? Boolean(r.perChannel) : false;
  const align = 'align' in r ? Boolean(r.align) : false;
  const headroom = 'headroom' in r && r.headroom !== undefined ? r.headroom : PER_CHANNEL_HEADROOM;
  if (typeof headroom !== 'number' || !(headroom >= 0 && headroom <= 4)) throw new CompileError('options', `roundingThresholdBits.headroom must be a number in [0, 4], got ${String(headroom)}`);
  if ('headroom' in r && r.headroom !== undefined && !perChannel) throw new CompileError('options', 'roundingThresholdBits.headroom applies to per-channel rounding: set perChannel: true');
  return { bits: r.bits, method, perChannel, align, headroom };
}

/** Bins allowed in one table's histograms (all channels together); wider tables are not aligned. */
const MAX_HISTOGRAM_BINS = 1 << 24;

/**
 * Per-channel accumulator ranges and (optionally) histograms of one table's input, filled during calibration.
 * Histograms grow to cover the values seen; a table whose histograms would pass MAX_HISTOGRAM_BINS drops them.
 */
export class ChannelStats {
  readonly min: Float64Array;
  readonly max: Float64Array;
  private hist: (Float64Array | undefined)[] | undefined;
  private histLo: Float64Array;
  private bins = 0;

  constructor(
    readonly channels: number,
    readonly channelStride: number,
    withHistograms: boolean,
  ) {
    this.min = new Float64Array(channels).fill(Infinity);
    this.max = new Float64Array(channels).fill(-Infinity);
    this.hist = withHistograms ? new Array(channels).fill(undefined) : undefined;
    this.histLo = new Float64Array(channels);
  }

  /** Values of a batch laid out [batch, per-sample]; channel = element / channelStride mod channels. */
  add(x: Float64Array, batch: number): void {
    const per = x.length / batch;
    for (let i = 0; i < x.length; i++) {
      const ch = Math.floor((i % per) / this.channelStride) % this.channels;
      const v = x[i]!;
      if (v < this.min[ch]!) this.min[ch] = v;
      if (v > this.max[ch]!) this.max[ch] = v;
    }
    if (!this.hist) return;
    for (let ch = 0; ch < this.channels; ch++) this.ensure(ch);
    if (!this.hist) return;
    for (let i = 0; i < x.length; i++) {
      const ch = Math.floor((i % per) / this.channelStride) % this.channels;
      this.hist[ch]![x[i]! - this.histLo[ch]!]! += 1;
    }
  }

  range(ch: number): IntRange {
    return { min: this.min[ch]!, max: this.max[ch]! };
  }

  /** Count of calibration accumulators equal to v in channel ch (undefined: no histograms kept). */
  histogram(ch: number): { lo: number; counts: Float64Array } | undefined {
    const h = this.hist?.[ch];
    return h ? { lo: this.histLo[ch]!, counts: h } : undefined;
  }

  private ensure(ch: number): void {
    const h = this.hist![ch];
    const lo = this.min[ch]!;
    const hi = this.max[ch]!;
    if (h && lo >= this.histLo[ch]! && hi < this.histLo[ch]! + h.length) return;
    const oldLen = h?.length ?? 0;
    const newLo = h ? Math.min(lo, this.histLo[ch]!) : lo;
    const newHi = h ? Math.max(hi, this.histLo[ch]! + oldLen - 1) : hi;
    const len = newHi - newLo + 1;
    this.bins += len - oldLen;
    if (this.bins > MAX_HISTOGRAM_BINS) {
      this.hist = undefined;
      return;
    }
    const grown = new Float64Array(len);
    if (h) grown.set(h, this.histLo[ch]! - newLo);
    this.hist![ch] = grown;
    this.histLo[ch] = newLo;
  }
}

/** Index after rounding away k bits of v + o (nearest, ties up), as `tluIndex` computes it. */
function rounded(v: number, k: number): number {
  return k > 0 ? Math.floor((v + 2 ** (k - 1)) / 2 ** k) : v;
}

/** Candidate offsets tried per channel × histogram bins above which offsets are tried on a coarser stride. */
const MAX_ALIGN_WORK = 1 << 22;

/**
 * The offset o ∈ [−2^(k−1), 2^(k−1)) minimising Σ_x count(x)·|f(2^k·round((x + o)/2^k) − o) − f(x)|, where f is
 * the channel's table function on accumulators (ties: the smallest |o|, so a perfect 0 stays 0).
 */
export function alignedOffset(
  k: number,
  hist: { lo: number; counts: Float64Array },
  f: (acc: number) => number,
  allowed: (o: number) => boolean = () => true,
): number {
  if (k === 0) return 0;
  const P = 2 ** k;
  const { lo, counts } = hist;
  const xs: number[] = [];
  const ws: number[] = [];
  for (let i = 0; i < counts.length; i++) if (counts[i]! > 0) (xs.push(lo + i), ws.push(counts[i]!));
  if (xs.length === 0) return 0;
  // f on every accumulator a rounded point can land on: [min − P, max + P].
  const fLo = xs[0]! - P;
  const fx = new Float64Array(xs.at(-1)! + P - fLo + 1);
  for (let i = 0; i < fx.length; i++) fx[i] = f(fLo + i);
  const stride = Math.max(1, Math.ceil((P * xs.length) / MAX_ALIGN_WORK));
  let best = 0;
  let bestCost = Infinity;
  for (let o = -P / 2; o < P / 2; o += stride) {
    if (o !== 0 && !allowed(o)) continue;
    let cost = 0;
    // Stop once this offset is strictly worse (an equal partial sum may still tie and win on |o|).
    for (let j = 0; j < xs.length && cost <= bestCost; j++) {
      const x = xs[j]!;
      const r = rounded(x + o, k) * P - o;
      cost += ws[j]! * Math.abs(fx[r - fLo]! - fx[x - fLo]!);
    }
    if (cost < bestCost || (cost === bestCost && Math.abs(o) < Math.abs(best))) {
      bestCost = cost;
      best = o;
    }
  }
  return best;
}

/** The rounding of one table: bits rounded away and offsets per channel, and the resulting index range. */
export interface TableRounding {
  /** Largest k over channels. */
  k: number;
  channelK: Int32Array;
  offsets: Int32Array;
  indexRange: IntRange;
}

/**
 * Chooses each channel's k (the layer's k = accBits − bits, or per channel from its own range) and offset, and the
 * union of the rounded index ranges (the table's domain).
 */
export function planTableRounding(
  spec: RoundingSpec | undefined,
  accRange: IntRange,
  stats: ChannelStats | undefined,
  f: (acc: number, ch: number) => number,
  channels: number,
): TableRounding {
  const accBits = bitsFor(accRange);
  let k = spec && accBits > spec.bits ? accBits - spec.bits : 0;
  // Approximate rounding: an encrypted index may come out one step off, so every rounded index the calibration data
  // reach keeps a spare table entry beyond it on both sides (overflow protection), within `bits`: one more bit is
  // rounded away while the spares do not fit.
  const spare = k > 0 && spec?.method === 'approximate' ? 1 : 0;
  const roundedRange = (kk: number) => ({ min: rounded(accRange.min, kk) - spare, max: rounded(accRange.max, kk) + spare });
  while (spare && bitsFor(roundedRange(k)) > spec!.bits) k++;
  const channelK = new Int32Array(channels).fill(k);
  const offsets = new Int32Array(channels);
  const plain = roundedRange(k);
  if (k === 0 || !stats || !spec || (!spec.perChannel && !spec.align)) return { k, channelK, offsets, indexRange: plain };
  // Every channel's rounded indices (and their spares) must stay in the domain of plain rounding's table (`bits`
  // wide, or one more when rounding up at the top of the range carries, as with Concrete's overflow protection), so
  // that neither refinement widens the table.
  const signed = accRange.min < 0 || plain.min < 0; // the second: a spare entry below an index of 0
  const domainBits = bitsFor(plain);
  const full = signed ? { min: -(2 ** (domainBits - 1)), max: 2 ** (domainBits - 1) - 1 } : { min: 0, max: 2 ** domainBits - 1 };
  const domain = { min: full.min + spare, max: full.max - spare };
  const indexRange = { min: Infinity, max: -Infinity };
  for (let ch = 0; ch < channels; ch++) {
    const r = stats.range(ch);
    if (!(r.min <= r.max)) continue; // no calibration value in this channel
    let kc = k;
    let shift = 0;
    if (spec.perChannel) {
      // The calibration set's extremes are not the test set's: a value past the domain wraps around (in TFHE as in
      // simulate), so a channel's range is widened by `headroom` of its span at both ends; its k is the
      // fewest bits that fit the widened span into the domain, and its range is moved (a whole number of steps) to
      // the domain's middle so that the headroom is on both sides. Without the move, a channel's range would have to
      // fit where it lies: a non-negative channel in a signed domain would use only half the table.
      const h = spec.headroom * (r.max - r.min);
      const wide = { min: Math.floor(r.min - h), max: Math.ceil(r.max + h) };
      const span = (kk: number) => rounded(wide.max, kk) - rounded(wide.min, kk);
      kc = 0;
      while (kc < k && span(kc) > domain.max - domain.min) kc++;
      const steps = Math.trunc((domain.min + domain.max - rounded(wide.min, kc) - rounded(wide.max, kc)) / 2);
      shift = steps * 2 ** kc;
      // The observed range must fit after the move (it may not when even k cannot hold the widened span).
      if (!(rounded(r.min + shift, kc) >= domain.min && rounded(r.max + shift, kc) <= domain.max)) shift = 0;
    }
    channelK[ch] = kc;
    const hist = spec.align ? stats.histogram(ch) : undefined;
    const fits = (o: number) => rounded(r.min + shift + o, kc) >= domain.min && rounded(r.max + shift + o, kc) <= domain.max;
    // A move by whole steps leaves the rounding grid where it was: the alignment is found as if unmoved.
    offsets[ch] = shift + (hist && kc > 0 ? alignedOffset(kc, hist, (acc) => f(acc, ch), fits) : 0);
    indexRange.min = Math.min(indexRange.min, rounded(r.min + offsets[ch]!, kc) - spare);
    indexRange.max = Math.max(indexRange.max, rounded(r.max + offsets[ch]!, kc) + spare);
  }
  // The table spans at least plain rounding's domain: a narrower union of calibrated channel ranges would shrink the
  // table and take away the headroom the per-channel k was chosen with.
  if (!(indexRange.min <= indexRange.max)) return { k, channelK, offsets, indexRange: plain };
  return { k, channelK, offsets, indexRange: { min: Math.min(plain.min, indexRange.min), max: Math.max(plain.max, indexRange.max) } };
}
