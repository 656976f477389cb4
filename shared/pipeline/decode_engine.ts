/**
 * The decode loop: sequences live in a paged per-head block store; every step batches the
 * active sequences, gathers each layer's past (each head with its own length), runs one
 * model step, appends the new K/V to each head's last block and samples. Knows nothing
 * about NATS: tokens go to a per-sequence sink.
 *
 * When the model keeps KV (`model.keepsKv`, the WebGPU device), a step whose batch is the
 * previous step's sequences in the same order continues from the KV the runtime kept and
 * gathers nothing; any change of the batch gathers again from the block store, which stays
 * the source of truth either way.
 *
 * Admission: a sequence reserves the blocks it may come to hold (its KV plus every token it may
 * still generate, or with decode-time eviction what its budget lets it hold) before it gets
 * any; `reserve` refuses with `unavailable` when the blocks not promised to other sequences
 * cannot hold it, so a full store is found at `open`, and a running sequence never runs out
 * of blocks mid-generation.
 *
 * Decode-time eviction (`decode_eviction.ts`) is a hook after each sequence's append: it
 * records the step's attention and, when a plan is due, evicts blocks from the store.
 * @module
 */
import { setImmediate } from "node:timers";
import type { DecodeOutput, KeptKv, Model } from "../model/mod.ts";
import { type StepLogprobs, TokenSampler } from "../model/sampling/mod.ts";
import type { BlockStore } from "../blockstore/mod.ts";
import { KvrelayError } from "../errors.ts";
import type { DecodeKvReport, SamplingParams, TokenLogprobs } from "../handoff/contract.ts";
import { type DecodeEvictionSettings, SequenceKv } from "./decode_eviction.ts";
import type { DecodedLayer } from "./decode_stage.ts";
import { seededRng } from "../model/sampling/rng.ts";

export interface SequenceSink {
  /** `logprobs` when the request's sampling asks for them. */
  onToken(id: number, text: string, logprobs?: TokenLogprobs): void;
  /** `kv`: what the sequence held in the block store (peaks, decode-time evictions). */
  onDone(
    finishReason: "stop" | "length",
    completionTokens: number,
    generateMs: number,
    kv: DecodeKvReport,
  ): void;
  onError(err: KvrelayError): void;
  /** Each step's logits (a view, valid during the call) before the next token is sampled. */
  onLogits?(logits: Float32Array): void;
}

/** Options of `DecodeEngine.add`. */
export interface AddOptions {
  /** Keep evicting while generating (see `decode_eviction.ts`); off when absent. */
  eviction?: DecodeEvictionSettings;
}

interface Sequence {
  id: string;
  pending: number;
  pos: number;
  count: number;
  sampling: SamplingParams;
  sampler: TokenSampler;
  sink: SequenceSink;
  started: number;
  prev: number;
  kv: SequenceKv;
}

export class DecodeEngine {
  readonly model: Model;
  readonly store: BlockStore;
  readonly maxBatch: number;
  #active = new Map<string, Sequence>();
  #loop?: Promise<void>;
  #cursor = 0;
  #kept?: { ids: string[]; kv: KeptKv };
  /** Blocks each sequence may come to hold, from `reserve` (or `add`) until it finishes. */
  #reserved = new Map<string, number>();
  steps = 0;
  /** Steps that continued from kept KV instead of gathering. */
  keptSteps = 0;

  constructor(model: Model, store: BlockStore, opts: { maxBatch: number }) {
    this.model = model;
    this.store = store;
    this.maxBatch = opts.maxBatch;
  }

  get activeCount(): number {
    return this.#active.size;
  }

  // ---- admission --------------------------------------------------------------------

  /** Blocks to hold these layers plus `appends` new positions in every head. */
  blocksFor(layers: DecodedLayer[], appends = 1): number {
    const bs = this.store.blockSize;
    let n = 0;
    for (const l of layers) for (const h of l.heads) n += Math.ceil((h.positions.length + appends) / bs);
    return n;
  }

  /** Blocks to hold `kvTokens` KVs plus `appends` new positions in every (layer, head). */
  blocksForTokens(kvTokens: number, appends: number): number {
    const c = this.model.config;
    const positions = Math.min(kvTokens + appends, c.maxSeqLen + 1);
    return c.nLayers * c.nKvHeads * Math.ceil(positions / this.store.blockSize);
  }

  /** Free blocks not promised to a reserved sequence. */
  get unreservedBlocks(): number {
    let promised = 0;
    for (const [id, n] of this.#reserved) promised += Math.max(0, n - this.#held(id));
    return this.store.stats().freeBlocks - promised;
  }

  /**
   * Reserves `blocks` for `seqId`, in place of its earlier reservation; throws `unavailable`
   * (and keeps the earlier one) when the blocks not promised to others cannot hold them.
   */
  reserve(seqId: string, blocks: number): void {
    const prev = this.#reserved.get(seqId);
    this.#reserved.delete(seqId);
    const free = this.unreservedBlocks;
    if (blocks > free) {
      if (prev !== undefined) this.#reserved.set(seqId, prev);
      throw new KvrelayError(
        "unavailable",
        `decode is full: the request needs ${blocks} KV blocks, ${
          Math.max(0, free)
        } of ${this.store.maxBlocks} are free`,
        { retryAfterS: 1 },
      );
    }
    this.#reserved.set(seqId, blocks);
  }

  /** Drops a reservation of a sequence that never started (a running one drops its own). */
  release(seqId: string): void {
    if (!this.#active.has(seqId)) this.#reserved.delete(seqId);
  }

  /** Blocks the store holds for `seqId` now. */
  #held(seqId: string): number {
    if (!this.store.has(seqId)) return 0;
    const bs = this.store.blockSize;
    let n = 0;
    for (let l = 0; l < this.store.nLayers; l++) {
      for (const len of this.store.lengths(seqId, l)) n += Math.ceil(len / bs);
    }
    return n;
  }

  // ---- sequences ------------------------------------------------------------------

  /**
   * Loads a prompt's surviving KV into the block store and starts generating from the token
   * prefill sampled. First reserves the exact worst case (the KV plus every token it may still
   * generate), replacing the estimate reserved at open; throws `unavailable` (block store full)
   * without partial allocation.
   */
  add(
    seqId: string,
    layers: DecodedLayer[],
    first: {
      token: number;
      nPos: number;
      promptLastToken?: number;
      /** For a repetition penalty. */
      promptIds?: number[];
      /** The first token's, from prefill. */
      logprobs?: StepLogprobs;
    },
    sampling: SamplingParams,
    sink: SequenceSink,
    opts: AddOptions = {},
  ): void {
    const c = this.model.config;
    if (layers.length !== c.nLayers) {
      throw new KvrelayError("corrupt_bundle", `got ${layers.length} layers, the model has ${c.nLayers}`);
    }
    if (opts.eviction && !this.model.attention) {
      throw new KvrelayError("unavailable", "decode-time eviction needs a model loaded with attention");
    }
    const byLayer = [...layers].sort((a, b) => a.layer - b.layer);
    // Each step appends one position; at most maxTokens - 1 steps, and none past maxSeqLen.
    const appends = Math.max(1, Math.min(sampling.maxTokens, c.maxSeqLen - first.nPos + 1));
    const lengths = Int32Array.from(byLayer.flatMap((l) => l.heads.map((h) => h.positions.length)));
    const kv = new SequenceKv(
      { nKvHeads: c.nKvHeads, blockSize: this.store.blockSize },
      lengths,
      first.nPos,
      opts.eviction,
    );
    // With eviction the budget, not maxTokens, bounds what the sequence may come to hold.
    this.reserve(seqId, kv.blockBound(appends));
    try {
      this.store.addSequence(seqId, (layer, head) => {
        const h = byLayer[layer].heads[head];
        return { keys: h.keys, values: h.values };
      });
    } catch (err) {
      this.#reserved.delete(seqId);
      throw err;
    }
    // A head over the budget on arrival is brought under it before the first step.
    if (kv.due) {
      kv.evict(this.store, seqId);
      this.reserve(seqId, kv.blockBound(appends));
    }
    const seq: Sequence = {
      id: seqId,
      pending: first.token,
      pos: first.nPos,
      count: 0,
      sampling,
      sampler: new TokenSampler(sampling, {
        endIds: [this.model.tokenizer.eosId, this.model.tokenizer.bosId],
        rng: seededRng(sampling.seed ?? 0x5eed),
        promptIds: first.promptIds,
      }),
      sink,
      started: performance.now(),
      prev: first.promptLastToken ?? this.model.tokenizer.bosId,
      kv,
    };
    seq.sampler.observe(first.token);
    if (!this.#emit(seq, first.token, first.logprobs)) return;
    this.#active.set(seqId, seq);
    this.#kick();
  }

  cancel(seqId: string): boolean {
    const seq = this.#active.get(seqId);
    if (!seq) return false;
    this.#finish(seq);
    return true;
  }

  /** Resolves when no sequence is active. */
  async idle(): Promise<void> {
    while (this.#loop) await this.#loop;
  }

  /** Emits `id` or finishes the sequence; true while it should go on. */
  #emit(seq: Sequence, id: number, logprobs?: StepLogprobs): boolean {
    const tok = this.model.tokenizer;
    if (seq.sampler.ends(id)) {
      this.#finish(seq, "stop");
      return false;
    }
    seq.count++;
    const withText = logprobs && {
      logprob: logprobs.logprob,
      top: logprobs.top.map((t) => ({ ...t, text: tok.decodePiece(seq.prev, t.id) })),
    };
    seq.sink.onToken(id, tok.decodePiece(seq.prev, id), withText);
    seq.prev = id;
    if (seq.count >= seq.sampling.maxTokens || seq.pos >= this.model.config.maxSeqLen) {
      this.#finish(seq, "length");
      return false;
    }
    return true;
  }

  #finish(seq: Sequence, reason?: "stop" | "length", err?: KvrelayError): void {
    this.#active.delete(seq.id);
    this.#reserved.delete(seq.id);
    this.store.free(seq.id);
    if (err) seq.sink.onError(err);
    else if (reason) seq.sink.onDone(reason, seq.count, performance.now() - seq.started, seq.kv.report());
  }

  #kick(): void {
    if (this.#loop) return;
    this.#loop = (async () => {
      try {
        while (this.#active.size) await this.#step();
      } finally {
        this.#dropKept();
        this.#loop = undefined;
      }
    })();
  }

  #pickBatch(): Sequence[] {
    const all = [...this.#active.values()];
    if (all.length <= this.maxBatch) return all;
    const out: Sequence[] = [];
    for (let i = 0; i < this.maxBatch; i++) out.push(all[(this.#cursor + i) % all.length]);
    this.#cursor = (this.#cursor + this.maxBatch) % all.length;
    return out;
  }

  async #step(): Promise<void> {
    // Yield so that new arrivals and cancels are seen between steps (setImmediate: under Deno
    // setTimeout(0) measured 2.4 ms a turn, a decode step's worth on kvrelay-tiny).
    await new Promise((r) => setImmediate(r));
    const batch = this.#pickBatch();
    if (!batch.length) return;
    const ids = batch.map((s) => s.id);
    const c = this.model.config;
    try {
      const tokens = batch.map((s) => s.pending);
      const positions = batch.map((s) => s.pos);
      const out = this.model.keepsKv
        ? await this.#decodeKept(ids, tokens, positions)
        : await this.model.decode({ tokens, positions, ...this.#gather(ids) });
      this.steps++;
      const H = c.nKvHeads, hd = c.headDim, V = c.vocabSize;
      let evicted = false;
      batch.forEach((seq, b) => {
        if (!this.#active.has(seq.id)) return; // cancelled during the step
        try {
          for (let l = 0; l < c.nLayers; l++) {
            this.store.append(
              seq.id,
              l,
              out.newKeys[l].subarray(b * H * hd, (b + 1) * H * hd),
              out.newValues[l].subarray(b * H * hd, (b + 1) * H * hd),
            );
          }
          seq.kv.observe(out, b);
          if (seq.kv.due) evicted = seq.kv.evict(this.store, seq.id) > 0 || evicted;
        } catch (e) {
          this.#finish(seq, undefined, asKvrelay(e));
          return;
        }
        seq.sink.onLogits?.(out.logits.subarray(b * V, (b + 1) * V));
        const next = seq.sampler.pick(out.logits.subarray(b * V, (b + 1) * V));
        seq.pos++;
        if (this.#emit(seq, next.id, next.logprobs)) seq.pending = next.id;
      });
      // A kept cache no longer matches a block store that evicted: the next step gathers.
      if (evicted) this.#dropKept();
    } catch (e) {
      for (const seq of batch) if (this.#active.has(seq.id)) this.#finish(seq, undefined, asKvrelay(e));
    }
  }

  /**
   * Each layer's past of `ids` from the block store, padded to that layer's longest head (the
   * graphs take a past length per layer). KV-Compress keeps very different counts per layer: padded
   * to the longest head of any layer, 71% of the rows were padding at rate 4, and 47% this way
   * (tests/bench/decode_capacity.ts).
   */
  #gather(ids: string[]) {
    const c = this.model.config;
    const past = [];
    const pastLengths = [];
    for (let l = 0; l < c.nLayers; l++) {
      let maxLen = 1;
      for (const id of ids) for (const n of this.store.lengths(id, l)) maxLen = Math.max(maxLen, n);
      const g = this.store.gather(ids, l, maxLen);
      past.push({ keys: g.keys, values: g.values });
      pastLengths.push(g.lengths);
    }
    return { past, pastLengths };
  }

  /** A step on a model that keeps KV: continue when the batch is unchanged, else gather. */
  async #decodeKept(ids: string[], tokens: number[], positions: number[]): Promise<DecodeOutput> {
    const prev = this.#kept;
    this.#kept = undefined;
    const same = prev !== undefined && prev.ids.length === ids.length &&
      prev.ids.every((id, i) => id === ids[i]);
    if (prev && !same) prev.kv.dispose();
    const out = same
      ? await this.model.decodeKeep({ tokens, positions, kept: prev.kv })
      : await this.model.decodeKeep({ tokens, positions, ...this.#gather(ids) });
    if (same) this.keptSteps++;
    this.#kept = { ids, kv: out.kept };
    return out;
  }

  #dropKept(): void {
    this.#kept?.kv.dispose();
    this.#kept = undefined;
  }
}

function asKvrelay(e: unknown): KvrelayError {
  return e instanceof KvrelayError
    ? e
    : new KvrelayError("model_error", e instanceof Error ? e.message : String(e));
}
