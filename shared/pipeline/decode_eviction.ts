/**
 * Eviction while decoding, for one sequence: what the decode engine calls after each step.
 *
 * Every step's attention metric (the new query's softmax probability², summed over each GQA
 * group; `DecodeOutput.attention`) is kept per cached row for the last `observationWindow`
 * steps, a ring of w slots a row, so a row's score is the metric of the w most recent
 * queries, as prefill's is of the last w prompt queries (max-pooled over rows when the request
 * pools). Every `interval` steps, or at once
 * when a head holds more than `maxCacheTokens`, `planDecodeEviction` picks whole blocks
 * across all layers and heads and the block store drops them (freed blocks go back to the
 * store). The budget: at most `maxCacheTokens` rows in any (layer, KV head) after each step,
 * or at most `1 / evictionRate` of the sequence's positions over all heads after each plan.
 *
 * Plans follow each sequence's own step count, not the engine's, so a sequence's tokens do not
 * depend on when it joined a batch or who shares it (a plan drops the batch's kept cache on
 * WebGPU: the price of that invariance when sequences joined at different steps).
 *
 * Memory: w floats a cached row (32 B at w = 8, against 256 B of fp16 K and V at head_dim 64).
 *
 * Rows of the prompt arrive with no decode-time score (the hand-off does not carry prefill's
 * metric): until w steps have been seen, ties go to the older row, as in every planner.
 * Also tracks what `usage.kv` reports of decode: the peak rows of any head and the peak
 * blocks of the sequence, with or without eviction.
 * @module
 */
import type { BlockStore } from "../blockstore/mod.ts";
import { KvrelayError } from "../errors.ts";
import { maxPool1d, planDecodeEviction } from "../eviction/mod.ts";
import type { DecodeKvReport, KvSettings } from "../handoff/contract.ts";
import type { DecodeOutput } from "../model/mod.ts";

/** Default steps between plans when no head is over its cap. */
export const DEFAULT_EVICT_INTERVAL = 16;

/** What decode-time eviction keeps; see the module doc. */
export interface DecodeEvictionSettings {
  policy: "kvcompress" | "uniform" | "recency";
  /** Keep at most 1/rate of the positions (over all heads); 1 = only `maxCacheTokens`. */
  rate: number;
  /** Most rows any (layer, KV head) holds. */
  maxCacheTokens?: number;
  protectedWindow: number;
  observationWindow: number;
  /** Max-pool kernel over each head's rows applied to the metric before ranking (0 or 1 = none). */
  maxPool: number;
  sink: number;
  floor: number;
  blockSize: number;
  /** Steps between plans (a head over `maxCacheTokens` is planned for at once). */
  interval: number;
}

/** The request's settings for decode-time eviction, or undefined when eviction is off. */
export function decodeEvictionOf(
  kv: KvSettings,
  interval = DEFAULT_EVICT_INTERVAL,
): DecodeEvictionSettings | undefined {
  if (!(kv.evictionRate > 1) && kv.maxCacheTokens === undefined) return undefined;
  return {
    policy: kv.eviction,
    rate: kv.maxCacheTokens === undefined ? kv.evictionRate : 1,
    maxCacheTokens: kv.maxCacheTokens,
    protectedWindow: kv.protectedWindow,
    observationWindow: kv.observationWindow,
    maxPool: kv.maxPool,
    sink: kv.sink,
    floor: kv.headFloor,
    blockSize: kv.blockSize,
    interval,
  };
}

/**
 * Positions a head may come to add to `kvTokens` with `appends` more decoded, under the
 * budget: what decode reserves at `open`, before the real KV (and `SequenceKv.blockBound`)
 * is known.
 */
export function headAppends(kvTokens: number, appends: number, s?: DecodeEvictionSettings): number {
  if (!s) return appends;
  const least = Math.max(s.protectedWindow + s.sink, Math.max(s.blockSize, s.floor)) + s.blockSize - 1;
  if (s.maxCacheTokens !== undefined) {
    return Math.max(0, Math.min(appends, Math.max(s.maxCacheTokens, least) + 1 - kvTokens));
  }
  // kvTokens is already 1/rate of the prompt; the decoded positions keep 1/rate too.
  return Math.min(appends, Math.ceil(appends / s.rate) + s.interval + s.blockSize + least);
}

/** One sequence's KV bookkeeping in the decode engine; see the module doc. */
export class SequenceKv {
  readonly settings?: DecodeEvictionSettings;
  readonly #nKvHeads: number;
  readonly #blockSize: number;
  /** Rows of each head, `layer * nKvHeads + head`, as the block store holds them. */
  readonly #len: Int32Array;
  /** Per head: (capacity rows, w) metric of the last w steps; slot `step % w`. */
  #hist: Float32Array[] = [];
  /** Positions of the sequence so far (prompt + decoded). */
  #positions: number;
  #steps = 0;
  #sincePlan = 0;
  #peakTokens = 0;
  #peakBlocks = 0;
  #evictions = 0;

  /**
   * @param lengths rows of each head as stored, `layer * nKvHeads + head`
   * @param nPos positions of the prompt
   */
  constructor(
    shape: { nKvHeads: number; blockSize: number },
    lengths: Int32Array,
    nPos: number,
    settings?: DecodeEvictionSettings,
  ) {
    this.#nKvHeads = shape.nKvHeads;
    this.#blockSize = shape.blockSize;
    this.#len = lengths.slice();
    this.#positions = nPos;
    // Blocks are the store's: evicting in runs of its block size frees whole blocks.
    this.settings = settings && { ...settings, blockSize: shape.blockSize };
    if (settings) {
      const w = settings.observationWindow;
      this.#hist = Array.from(this.#len, (n) => new Float32Array((n + 64) * w));
    }
    this.#peak();
  }

  /** Rows of each head now (a copy). */
  get lengths(): Int32Array {
    return this.#len.slice();
  }

  report(): DecodeKvReport {
    return {
      peak_cache_tokens: this.#peakTokens,
      peak_blocks: this.#peakBlocks,
      decode_evictions: this.#evictions,
    };
  }

  /**
   * Most blocks the sequence may come to hold with `appends` more positions: without eviction
   * every row stays; with it, the budget bounds each head (`maxCacheTokens`) or the total (rate).
   */
  blockBound(appends: number): number {
    const bs = this.#blockSize, heads = this.#len.length;
    let all = 0;
    for (const n of this.#len) all += Math.ceil((n + appends) / bs);
    const s = this.settings;
    if (!s) return all;
    // Rows a head may be left with when every block it offers is gone.
    const least = Math.max(s.protectedWindow + s.sink, Math.max(bs, s.floor)) + bs - 1;
    if (s.maxCacheTokens !== undefined) {
      const cap = Math.max(s.maxCacheTokens, least) + 1;
      let n = 0;
      for (const len of this.#len) n += Math.ceil(Math.max(len, Math.min(len + appends, cap)) / bs);
      return Math.min(all, n);
    }
    const target = Math.floor((heads * (this.#positions + appends)) / s.rate);
    const kept = Math.max(target, heads * least) + heads * s.interval;
    let now = 0;
    for (const n of this.#len) now += Math.ceil(n / bs);
    return Math.min(all, Math.max(now, Math.ceil(kept / bs) + heads));
  }

  /**
   * Records step `b` of a batch after its new K/V was appended to every head: the metric of
   * each cached row and of the new one. Throws `internal` when the step's layout disagrees
   * with the rows this sequence holds.
   */
  observe(out: DecodeOutput, b: number): void {
    const H = this.#nKvHeads;
    this.#positions++;
    this.#steps++;
    this.#sincePlan++;
    const s = this.settings;
    if (!s) {
      for (let i = 0; i < this.#len.length; i++) this.#len[i]++;
      this.#peak();
      return;
    }
    const { attention, attentionLayout: lay } = out;
    if (!attention || !lay) {
      throw new KvrelayError("internal", "decode-time eviction needs a model that returns attention");
    }
    const w = s.observationWindow, slot = (this.#steps - 1) % w;
    for (let i = 0; i < this.#len.length; i++) {
      const l = Math.floor(i / H), bh = b * H + (i % H);
      const n = this.#len[i];
      const prefix = lay.lengths[l][bh], gathered = lay.gathered[l];
      if (prefix + lay.steps !== n) {
        throw new KvrelayError(
          "internal",
          `head ${i}: the step saw ${prefix + lay.steps} rows, ${n} are held`,
        );
      }
      const width = gathered + lay.steps + 1;
      const a = attention[l].subarray(bh * width, (bh + 1) * width);
      const hist = this.#room(i, n + 1);
      for (let r = 0; r < prefix; r++) hist[r * w + slot] = a[r];
      for (let r = prefix; r < n; r++) hist[r * w + slot] = a[gathered + r - prefix];
      hist.fill(0, n * w, (n + 1) * w);
      hist[n * w + slot] = a[width - 1];
      this.#len[i] = n + 1;
    }
    this.#peak();
  }

  /** A plan is due: `interval` steps since the last, or a head over `maxCacheTokens`. */
  get due(): boolean {
    const s = this.settings;
    if (!s) return false;
    if (this.#sincePlan >= s.interval) return true;
    if (s.maxCacheTokens === undefined) return false;
    for (const n of this.#len) if (n > s.maxCacheTokens) return true;
    return false;
  }

  /**
   * Plans and evicts from `store` (which must hold `seqId` with these rows); returns the rows
   * dropped over all heads.
   */
  evict(store: BlockStore, seqId: string): number {
    const s = this.settings;
    if (!s) return 0;
    this.#sincePlan = 0;
    const H = this.#nKvHeads, w = s.observationWindow, heads = this.#len.length;
    const metric = Array.from(this.#len, (n, i) => {
      const hist = this.#hist[i], m = new Float32Array(n);
      for (let r = 0; r < n; r++) {
        let sum = 0;
        for (let k = 0; k < w; k++) sum += hist[r * w + k];
        m[r] = sum;
      }
      // as prefill's plan pools over positions; rows are in position order
      return s.maxPool > 1 ? maxPool1d(m, s.maxPool) : m;
    });
    const targetKept = s.maxCacheTokens !== undefined
      ? s.maxCacheTokens * heads
      : Math.floor((heads * this.#positions) / s.rate);
    const plan = planDecodeEviction(metric, {
      policy: s.policy,
      blockSize: s.blockSize,
      protectedWindow: s.protectedWindow,
      sink: s.sink,
      floor: s.floor,
      targetKept,
      headCap: s.maxCacheTokens,
    });
    let dropped = 0;
    for (let l = 0; l < heads / H; l++) {
      const drop = plan.drop.slice(l * H, (l + 1) * H);
      if (drop.every((d) => d.length === 0)) continue;
      store.evict(seqId, l, drop);
      for (let h = 0; h < H; h++) dropped += this.#compact(l * H + h, drop[h]);
    }
    if (dropped > 0) this.#evictions++;
    return dropped;
  }

  /** Drops rows `d` (ascending) of head i's history, as the store dropped them. */
  #compact(i: number, d: Int32Array): number {
    if (d.length === 0) return 0;
    const w = this.settings!.observationWindow, hist = this.#hist[i], n = this.#len[i];
    let to = d[0], j = 0;
    for (let r = d[0]; r < n; r++) {
      if (j < d.length && d[j] === r) {
        j++;
        continue;
      }
      hist.copyWithin(to * w, r * w, (r + 1) * w);
      to++;
    }
    this.#len[i] = to;
    return d.length;
  }

  /** Head i's history with room for `rows` rows. */
  #room(i: number, rows: number): Float32Array {
    const w = this.settings!.observationWindow;
    let hist = this.#hist[i];
    if (hist.length < rows * w) {
      const grown = new Float32Array((rows + (rows >> 1) + 64) * w);
      grown.set(hist);
      this.#hist[i] = hist = grown;
    }
    return hist;
  }

  #peak(): void {
    let tokens = 0, blocks = 0;
    for (const n of this.#len) {
      tokens = Math.max(tokens, n);
      blocks += Math.ceil(n / this.#blockSize);
    }
    this.#peakTokens = Math.max(this.#peakTokens, tokens);
    this.#peakBlocks = Math.max(this.#peakBlocks, blocks);
  }
}
