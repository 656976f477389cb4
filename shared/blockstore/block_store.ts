/**
 * The decode service's paged KV store. One preallocated fp32 arena of `maxBlocks` blocks;
 * a block holds `blockSize` K rows then `blockSize` V rows of one (sequence, layer, KV
 * head). Each head has its own block table and length, so heads that kept different
 * numbers of KVs hold different numbers of blocks. Knows nothing of positions, models or
 * eviction policy: rows in, rows out, whole blocks allocated and freed.
 * @module
 */
import { KvrelayError } from "../errors.ts";
import { blocksForLengths, bytesPerBlock } from "./budget.ts";
import { OutOfBlocksError } from "./errors.ts";

/** Geometry and budget of a store. */
export interface BlockStoreOptions {
  nLayers: number;
  nKvHeads: number;
  headDim: number;
  blockSize: number;
  /** Blocks in the arena; see `blocksForBytes` to size it from a byte budget. */
  maxBlocks: number;
}

/** Occupancy, exact at every moment: `usedBlocks + freeBlocks === maxBlocks`. */
export interface BlockStoreStats {
  usedBlocks: number;
  freeBlocks: number;
  bytesUsed: number;
  bytesCapacity: number;
  sequences: number;
}

/** One layer of a batch, dense and zero-padded, as `Model.decode` takes it. */
export interface GatheredLayer {
  keys: Float32Array; // (B, nKvHeads, P, headDim)
  values: Float32Array; // (B, nKvHeads, P, headDim)
  lengths: Int32Array; // (B * nKvHeads): valid prefix of each head
  P: number;
}

interface SeqState {
  tables: number[][]; // (nLayers * nKvHeads) block ids, in row order
  lengths: Int32Array; // (nLayers * nKvHeads)
}

/**
 * A paged per-head KV block store with a fixed budget.
 *
 * @example
 * ```ts
 * import { BlockStore } from "./block_store.ts";
 * const store = new BlockStore({ nLayers: 1, nKvHeads: 2, headDim: 2, blockSize: 4, maxBlocks: 8 });
 * store.addSequence("a", (_l, h) => ({ keys: new Float32Array(2 * (h + 1)), values: new Float32Array(2 * (h + 1)) }));
 * store.append("a", 0, new Float32Array([1, 1, 2, 2]), new Float32Array(4));
 * console.log(store.lengths("a", 0), store.gather(["a"], 0).P); // Int32Array [2, 3] 3
 * ```
 */
export class BlockStore {
  readonly nLayers: number;
  readonly nKvHeads: number;
  readonly headDim: number;
  readonly blockSize: number;
  readonly maxBlocks: number;
  readonly #arena: Float32Array; // (maxBlocks, 2, blockSize, headDim): K rows then V rows
  readonly #free: Int32Array; // stack of free block ids; [0, #freeTop) valid
  #freeTop: number;
  readonly #seqs = new Map<string, SeqState>();

  constructor(opts: BlockStoreOptions) {
    for (const k of ["nLayers", "nKvHeads", "headDim", "blockSize"] as const) {
      if (!Number.isInteger(opts[k]) || opts[k] <= 0) throw new RangeError(`BlockStore: ${k} = ${opts[k]}`);
    }
    if (!Number.isInteger(opts.maxBlocks) || opts.maxBlocks < 0) {
      throw new RangeError(`BlockStore: maxBlocks = ${opts.maxBlocks}`);
    }
    this.nLayers = opts.nLayers;
    this.nKvHeads = opts.nKvHeads;
    this.headDim = opts.headDim;
    this.blockSize = opts.blockSize;
    this.maxBlocks = opts.maxBlocks;
    this.#arena = new Float32Array(opts.maxBlocks * 2 * opts.blockSize * opts.headDim);
    this.#free = new Int32Array(opts.maxBlocks);
    // Pop order 0, 1, 2, ... so a fresh store fills the arena front to back.
    for (let i = 0; i < opts.maxBlocks; i++) this.#free[i] = opts.maxBlocks - 1 - i;
    this.#freeTop = opts.maxBlocks;
  }

  // ---- allocation ----------------------------------------------------------------

  /** True when `blocksNeeded` blocks are free now. */
  canFit(blocksNeeded: number): boolean {
    return blocksNeeded <= this.#freeTop;
  }

  #reserve(needed: number): void {
    if (needed > this.#freeTop) throw new OutOfBlocksError(needed, this.#freeTop);
  }

  #alloc(): number {
    return this.#free[--this.#freeTop];
  }

  #release(block: number): void {
    this.#free[this.#freeTop++] = block;
  }

  #seq(seqId: string): SeqState {
    const s = this.#seqs.get(seqId);
    if (!s) throw new KvrelayError("not_found", `no sequence ${seqId} in the block store`);
    return s;
  }

  #layer(layer: number): void {
    if (!Number.isInteger(layer) || layer < 0 || layer >= this.nLayers) {
      throw new RangeError(`BlockStore: layer ${layer} outside [0, ${this.nLayers})`);
    }
  }

  /** Arena offset of K row `row` of a head (V rows sit `blockSize * headDim` later). */
  #rowOffset(table: number[], row: number): number {
    const bs = this.blockSize;
    return (table[Math.floor(row / bs)] * 2 * bs + (row % bs)) * this.headDim;
  }

  // ---- sequences -------------------------------------------------------------------

  /**
   * Stores a sequence's KV: `perHead(layer, head)` gives that head's rows, keys and values
   * each `[n, headDim]` (n may differ per head, and may be 0). Throws `OutOfBlocksError`
   * before allocating anything when the budget cannot hold it all.
   */
  addSequence(
    seqId: string,
    perHead: (layer: number, head: number) => { keys: Float32Array; values: Float32Array },
  ): void {
    if (this.#seqs.has(seqId)) throw new KvrelayError("bad_request", `sequence ${seqId} is already stored`);
    const hd = this.headDim;
    const heads: { keys: Float32Array; values: Float32Array }[] = [];
    const lengths = new Int32Array(this.nLayers * this.nKvHeads);
    for (let l = 0; l < this.nLayers; l++) {
      for (let h = 0; h < this.nKvHeads; h++) {
        const kv = perHead(l, h);
        if (kv.keys.length !== kv.values.length || kv.keys.length % hd !== 0) {
          throw new TypeError(
            `addSequence: layer ${l} head ${h}: keys ${kv.keys.length} / values ${kv.values.length} not [n, ${hd}]`,
          );
        }
        lengths[heads.length] = kv.keys.length / hd;
        heads.push(kv);
      }
    }
    this.#reserve(blocksForLengths(lengths, this.blockSize));
    const bs = this.blockSize;
    const tables = heads.map((kv, i) => {
      const table: number[] = [];
      for (let r = 0; r < lengths[i]; r += bs) {
        const b = this.#alloc();
        table.push(b);
        const rows = Math.min(bs, lengths[i] - r);
        const off = b * 2 * bs * hd;
        this.#arena.set(kv.keys.subarray(r * hd, (r + rows) * hd), off);
        this.#arena.set(kv.values.subarray(r * hd, (r + rows) * hd), off + bs * hd);
      }
      return table;
    });
    this.#seqs.set(seqId, { tables, lengths });
  }

  /**
   * Appends one token to every KV head of `layer`: `newKeys` and `newValues` are
   * `[nKvHeads, headDim]`. A head whose last block is full gets a new one; if the budget
   * cannot give every such head one, throws `OutOfBlocksError` and changes nothing.
   */
  append(seqId: string, layer: number, newKeys: Float32Array, newValues: Float32Array): void {
    const s = this.#seq(seqId);
    this.#layer(layer);
    const H = this.nKvHeads, hd = this.headDim, bs = this.blockSize;
    if (newKeys.length !== H * hd || newValues.length !== H * hd) {
      throw new TypeError(`append: keys ${newKeys.length} / values ${newValues.length}, need ${H * hd}`);
    }
    let needed = 0;
    for (let h = 0; h < H; h++) if (s.lengths[layer * H + h] % bs === 0) needed++;
    this.#reserve(needed);
    for (let h = 0; h < H; h++) {
      const i = layer * H + h;
      const len = s.lengths[i];
      if (len % bs === 0) s.tables[i].push(this.#alloc());
      const off = this.#rowOffset(s.tables[i], len);
      this.#arena.set(newKeys.subarray(h * hd, (h + 1) * hd), off);
      this.#arena.set(newValues.subarray(h * hd, (h + 1) * hd), off + bs * hd);
      s.lengths[i] = len + 1;
    }
  }

  /**
   * Evicts rows of a stored sequence: `drop[h]` lists rows of head h of `layer`
   * (ascending, unique, below its length; empty or missing drops none). Survivors move
   * down in their order to fill the gaps and blocks left empty at the end are freed, as
   * the reference fork's cache moves do. Checks every head before changing any.
   */
  evict(seqId: string, layer: number, drop: (Int32Array | undefined)[]): void {
    const s = this.#seq(seqId);
    this.#layer(layer);
    const H = this.nKvHeads, hd = this.headDim, bs = this.blockSize;
    if (drop.length > H) throw new TypeError(`evict: ${drop.length} heads given, the store has ${H}`);
    for (let h = 0; h < drop.length; h++) {
      const d = drop[h];
      const len = s.lengths[layer * H + h];
      if (!d) continue;
      for (let j = 0; j < d.length; j++) {
        if (!(d[j] >= 0 && d[j] < len && (j === 0 || d[j] > d[j - 1]))) {
          throw new RangeError(`evict: head ${h}: rows must ascend within [0, ${len}); got ${d[j]} at ${j}`);
        }
      }
    }
    for (let h = 0; h < drop.length; h++) {
      const d = drop[h];
      if (!d || d.length === 0) continue;
      const i = layer * H + h;
      const table = s.tables[i];
      const len = s.lengths[i];
      let w = d[0]; // next row to fill
      let j = 0;
      for (let r = d[0]; r < len; r++) {
        if (j < d.length && d[j] === r) {
          j++;
          continue;
        }
        const src = this.#rowOffset(table, r), dst = this.#rowOffset(table, w);
        this.#arena.copyWithin(dst, src, src + hd);
        this.#arena.copyWithin(dst + bs * hd, src + bs * hd, src + bs * hd + hd);
        w++;
      }
      s.lengths[i] = w;
      const keepBlocks = Math.ceil(w / bs);
      while (table.length > keepBlocks) this.#release(table.pop()!);
    }
  }

  /** Frees every block of a sequence. */
  free(seqId: string): void {
    const s = this.#seq(seqId);
    for (const table of s.tables) for (const b of table) this.#release(b);
    this.#seqs.delete(seqId);
  }

  /** True when the sequence is stored. */
  has(seqId: string): boolean {
    return this.#seqs.has(seqId);
  }

  // ---- reading ---------------------------------------------------------------------

  /** Rows held by each KV head of `layer`: `[nKvHeads]`, a copy. */
  lengths(seqId: string, layer: number): Int32Array {
    this.#layer(layer);
    const H = this.nKvHeads;
    return this.#seq(seqId).lengths.slice(layer * H, (layer + 1) * H);
  }

  /** The block ids of one head, in row order (a copy, for tests and tools). */
  blockTable(seqId: string, layer: number, head: number): Int32Array {
    this.#layer(layer);
    if (!Number.isInteger(head) || head < 0 || head >= this.nKvHeads) throw new RangeError(`head ${head}`);
    return Int32Array.from(this.#seq(seqId).tables[layer * this.nKvHeads + head]);
  }

  /**
   * Copies one layer of a batch into dense zero-padded arrays: keys and values
   * `[B, nKvHeads, P, headDim]` and lengths `[B * nKvHeads]`. `P` is `maxLen` when given
   * (it must hold every head; a fixed `P` keeps graph shapes steady), else the longest head.
   */
  gather(seqIds: string[], layer: number, maxLen?: number): GatheredLayer {
    this.#layer(layer);
    const H = this.nKvHeads, hd = this.headDim, bs = this.blockSize;
    const seqs = seqIds.map((id) => this.#seq(id));
    const lengths = new Int32Array(seqs.length * H);
    let longest = 0;
    seqs.forEach((s, b) => {
      for (let h = 0; h < H; h++) {
        lengths[b * H + h] = s.lengths[layer * H + h];
        longest = Math.max(longest, lengths[b * H + h]);
      }
    });
    if (maxLen !== undefined && !(Number.isInteger(maxLen) && maxLen >= longest)) {
      throw new RangeError(`gather: maxLen ${maxLen} is below the longest head (${longest})`);
    }
    const P = maxLen ?? longest;
    const keys = new Float32Array(seqs.length * H * P * hd);
    const values = new Float32Array(seqs.length * H * P * hd);
    seqs.forEach((s, b) => {
      for (let h = 0; h < H; h++) {
        const table = s.tables[layer * H + h];
        const len = lengths[b * H + h];
        const base = (b * H + h) * P * hd;
        for (let j = 0; j * bs < len; j++) {
          const rows = Math.min(bs, len - j * bs);
          const off = table[j] * 2 * bs * hd;
          keys.set(this.#arena.subarray(off, off + rows * hd), base + j * bs * hd);
          values.set(this.#arena.subarray(off + bs * hd, off + bs * hd + rows * hd), base + j * bs * hd);
        }
      }
    });
    return { keys, values, lengths, P };
  }

  /** Occupancy now. */
  stats(): BlockStoreStats {
    const used = this.maxBlocks - this.#freeTop;
    const per = bytesPerBlock(this);
    return {
      usedBlocks: used,
      freeBlocks: this.#freeTop,
      bytesUsed: used * per,
      bytesCapacity: this.maxBlocks * per,
      sequences: this.#seqs.size,
    };
  }
}
