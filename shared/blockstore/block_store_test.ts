import { assert, assertEquals, assertInstanceOf, assertThrows } from "@std/assert";
import { KvrelayError } from "../errors.ts";
import { applyPlan, planKvCompress } from "../eviction/mod.ts";
import { BlockStore } from "./block_store.ts";
import { blocksForLengths, bytesPerBlock } from "./budget.ts";
import { OutOfBlocksError } from "./errors.ts";

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

/** The obvious model: per sequence, per (layer, head), the list of K rows and V rows. */
class NaiveStore {
  seqs = new Map<string, { k: number[][]; v: number[][] }[]>();
  constructor(readonly nLayers: number, readonly nKvHeads: number, readonly headDim: number) {}
  gather(ids: string[], layer: number, P?: number) {
    const H = this.nKvHeads, hd = this.headDim;
    const heads = ids.flatMap((id) => this.seqs.get(id)!.slice(layer * H, (layer + 1) * H));
    const len = P ?? Math.max(0, ...heads.map((x) => x.k.length));
    const keys = new Float32Array(heads.length * len * hd);
    const values = new Float32Array(heads.length * len * hd);
    heads.forEach((x, i) =>
      x.k.forEach((row, r) => {
        keys.set(row, (i * len + r) * hd);
        values.set(x.v[r], (i * len + r) * hd);
      })
    );
    return { keys, values, lengths: Int32Array.from(heads, (x) => x.k.length), P: len };
  }
}

const DIMS = { nLayers: 2, nKvHeads: 3, headDim: 4, blockSize: 4 };

function randomRows(rnd: () => number, n: number, hd: number): number[][] {
  return Array.from({ length: n }, () => Array.from({ length: hd }, () => Math.fround(rnd() * 2 - 1)));
}

function addBoth(store: BlockStore, naive: NaiveStore, id: string, lens: number[], rnd: () => number): void {
  const hd = store.headDim;
  const heads = lens.map((n) => ({ k: randomRows(rnd, n, hd), v: randomRows(rnd, n, hd) }));
  store.addSequence(id, (l, h) => {
    const x = heads[l * store.nKvHeads + h];
    return { keys: new Float32Array(x.k.flat()), values: new Float32Array(x.v.flat()) };
  });
  naive.seqs.set(id, heads);
}

Deno.test("BlockStore.gather() equals a naive reference with uneven head lengths", () => {
  const rnd = lcg(1);
  const store = new BlockStore({ ...DIMS, maxBlocks: 100 });
  const naive = new NaiveStore(2, 3, 4);
  addBoth(store, naive, "a", [0, 1, 4, 5, 9, 3], rnd);
  addBoth(store, naive, "b", [12, 2, 7, 4, 0, 1], rnd);
  for (let l = 0; l < 2; l++) {
    assertEquals(store.gather(["a", "b"], l), naive.gather(["a", "b"], l));
    assertEquals(store.gather(["b", "a"], l, 15), naive.gather(["b", "a"], l, 15));
    assertEquals(store.gather([], l).P, 0);
  }
  assertEquals(store.lengths("b", 0), Int32Array.of(12, 2, 7));
  assertEquals(store.stats().usedBlocks, blocksForLengths([0, 1, 4, 5, 9, 3, 12, 2, 7, 4, 0, 1], 4));
  assertThrows(() => store.gather(["a"], 0, 3), RangeError);
});

Deno.test("BlockStore.append() fills each head's last block, then takes a new one", () => {
  const store = new BlockStore({ ...DIMS, maxBlocks: 100 });
  const naive = new NaiveStore(2, 3, 4);
  const rnd = lcg(2);
  addBoth(store, naive, "a", [3, 4, 0, 8, 1, 2], rnd);
  const before = store.stats().usedBlocks;
  for (let t = 0; t < 6; t++) {
    for (let l = 0; l < 2; l++) {
      const k = randomRows(rnd, 3, 4), v = randomRows(rnd, 3, 4);
      store.append("a", l, new Float32Array(k.flat()), new Float32Array(v.flat()));
      for (let h = 0; h < 3; h++) {
        naive.seqs.get("a")![l * 3 + h].k.push(k[h]);
        naive.seqs.get("a")![l * 3 + h].v.push(v[h]);
      }
    }
  }
  for (let l = 0; l < 2; l++) assertEquals(store.gather(["a"], l), naive.gather(["a"], l));
  assertEquals(store.stats().usedBlocks - before, blocksForLengths([9, 10, 6, 14, 7, 8], 4) - before);
});

Deno.test("BlockStore.addSequence() out of budget is a typed error with nothing allocated", () => {
  const store = new BlockStore({ ...DIMS, maxBlocks: 10 });
  const naive = new NaiveStore(2, 3, 4);
  addBoth(store, naive, "a", [4, 4, 4, 4, 4, 4], lcg(3));
  const before = store.stats();
  const err = assertThrows(() => addBoth(store, naive, "b", [4, 4, 4, 4, 4, 1], lcg(4)), OutOfBlocksError);
  assertInstanceOf(err, KvrelayError);
  assertEquals([err.code, err.status, err.needed, err.free], ["unavailable", 503, 6, 4]);
  assertEquals(store.stats(), before);
  assert(!store.has("b"));
  // An append that needs a new block in three heads, with two free, changes nothing.
  addBoth(store, naive, "c", [1, 1, 0, 0, 0, 0], lcg(5));
  assertEquals(store.stats().freeBlocks, 2);
  const lens = store.lengths("a", 0);
  assertThrows(() => store.append("a", 0, new Float32Array(12), new Float32Array(12)), OutOfBlocksError);
  assertEquals(store.lengths("a", 0), lens);
  assertEquals(store.stats().freeBlocks, 2);
  assertEquals(store.gather(["a"], 0), naive.gather(["a"], 0));
});

Deno.test("BlockStore rejects unknown and duplicate sequences and wrong shapes", () => {
  const store = new BlockStore({ ...DIMS, maxBlocks: 10 });
  store.addSequence("a", () => ({ keys: new Float32Array(4), values: new Float32Array(4) }));
  const dup = assertThrows(
    () => store.addSequence("a", () => ({ keys: new Float32Array(0), values: new Float32Array(0) })),
    KvrelayError,
  );
  assertEquals(dup.code, "bad_request");
  assertEquals(assertThrows(() => store.free("zz"), KvrelayError).code, "not_found");
  assertThrows(
    () => store.addSequence("b", () => ({ keys: new Float32Array(5), values: new Float32Array(5) })),
    TypeError,
  );
  assertThrows(() => store.append("a", 0, new Float32Array(4), new Float32Array(12)), TypeError);
  assertThrows(() => store.lengths("a", 2), RangeError);
  assertThrows(() => store.evict("a", 0, [Int32Array.of(1)]), RangeError);
  assertEquals(store.stats().usedBlocks, 6);
});

Deno.test("BlockStore.evict() compacts survivors in order and frees emptied blocks", () => {
  const store = new BlockStore({ ...DIMS, maxBlocks: 40 });
  const naive = new NaiveStore(2, 3, 4);
  addBoth(store, naive, "a", [13, 8, 5, 2, 2, 2], lcg(6));
  const drop = [Int32Array.of(0, 2, 3, 7, 8, 12), undefined, Int32Array.of(0, 1, 2, 3, 4)];
  store.evict("a", 0, drop);
  const heads = naive.seqs.get("a")!;
  drop.forEach((d, h) => {
    if (!d) return;
    const gone = new Set(d);
    heads[h].k = heads[h].k.filter((_, r) => !gone.has(r));
    heads[h].v = heads[h].v.filter((_, r) => !gone.has(r));
  });
  assertEquals(store.gather(["a"], 0), naive.gather(["a"], 0));
  assertEquals(store.lengths("a", 0), Int32Array.of(7, 8, 0));
  assertEquals(store.stats().usedBlocks, blocksForLengths([7, 8, 0, 2, 2, 2], 4));
});

Deno.test("BlockStore leaks nothing over 10k random add/append/evict/free operations", () => {
  const rnd = lcg(42);
  const maxBlocks = 120;
  const store = new BlockStore({ ...DIMS, maxBlocks });
  const naive = new NaiveStore(2, 3, 4);
  const H = 3, L = 2;
  let next = 0, outOfBlocks = 0;
  const check = (deep: boolean) => {
    const st = store.stats();
    assertEquals(st.usedBlocks + st.freeBlocks, maxBlocks);
    assertEquals(st.sequences, naive.seqs.size);
    let used = 0;
    for (const heads of naive.seqs.values()) used += blocksForLengths(heads.map((x) => x.k.length), 4);
    assertEquals(st.usedBlocks, used);
    assertEquals(st.bytesUsed, used * bytesPerBlock(DIMS));
    if (!deep) return;
    const owned = new Set<number>();
    for (const id of naive.seqs.keys()) {
      for (let l = 0; l < L; l++) {
        for (let h = 0; h < H; h++) for (const b of store.blockTable(id, l, h)) owned.add(b);
      }
    }
    assertEquals(owned.size, used, "a block is owned twice");
    const ids = [...naive.seqs.keys()];
    for (let l = 0; l < L; l++) assertEquals(store.gather(ids, l), naive.gather(ids, l));
  };
  for (let op = 0; op < 10_000; op++) {
    const ids = [...naive.seqs.keys()];
    const pick = () => ids[Math.floor(rnd() * ids.length)];
    const r = rnd();
    try {
      if (r < 0.2 || ids.length === 0) {
        const lens = Array.from({ length: L * H }, () => Math.floor(rnd() ** 2 * 14));
        addBoth(store, naive, `s${next++}`, lens, rnd);
      } else if (r < 0.7) {
        const id = pick(), l = Math.floor(rnd() * L);
        const k = randomRows(rnd, H, 4), v = randomRows(rnd, H, 4);
        store.append(id, l, new Float32Array(k.flat()), new Float32Array(v.flat()));
        for (let h = 0; h < H; h++) {
          naive.seqs.get(id)![l * H + h].k.push(k[h]);
          naive.seqs.get(id)![l * H + h].v.push(v[h]);
        }
      } else if (r < 0.85) {
        const id = pick(), l = Math.floor(rnd() * L);
        const lens = store.lengths(id, l);
        const drop = Array.from(
          lens,
          (n) => Int32Array.from({ length: n }, (_, i) => i).filter(() => rnd() < 0.4),
        );
        store.evict(id, l, drop);
        drop.forEach((d, h) => {
          const gone = new Set(d);
          const x = naive.seqs.get(id)![l * H + h];
          x.k = x.k.filter((_, i) => !gone.has(i));
          x.v = x.v.filter((_, i) => !gone.has(i));
        });
      } else {
        const id = pick();
        store.free(id);
        naive.seqs.delete(id);
      }
    } catch (e) {
      if (!(e instanceof OutOfBlocksError)) throw e;
      outOfBlocks++;
    }
    check(op % 250 === 0);
  }
  check(true);
  for (const id of [...naive.seqs.keys()]) store.free(id);
  assertEquals(store.stats().freeBlocks, maxBlocks);
  assert(outOfBlocks > 0, "the run never reached the budget");
});

Deno.test("BlockStore memory held follows the kept fraction of an eviction plan", () => {
  const shape = { nLayers: 4, nKvHeads: 4, nPos: 1024 };
  const hd = 8, bs = 16;
  const rnd = lcg(7);
  const metric = Float32Array.from({ length: 4 * 4 * 1024 }, (_, i) => rnd() ** 4 * (1 + (i >> 10)));
  const kv = { keys: new Float32Array(4 * 1024 * hd), values: new Float32Array(4 * 1024 * hd) };
  const full = 4 * 4 * 1024 / bs;
  for (const rate of [1, 2, 4, 8]) {
    const plan = planKvCompress(metric, shape, { rate, blockSize: bs });
    const store = new BlockStore({ ...shape, headDim: hd, blockSize: bs, maxBlocks: full });
    const layers = Array.from({ length: 4 }, (_, l) => applyPlan(kv, plan, l, hd));
    store.addSequence("s", (l, h) => ({ keys: layers[l].keys[h], values: layers[l].values[h] }));
    const st = store.stats();
    assertEquals(st.usedBlocks, blocksForLengths(plan.kept.map((k) => k.length), bs));
    // nPos is a multiple of the block size and eviction takes whole blocks: exact.
    assertEquals(st.bytesUsed / st.bytesCapacity, plan.keptCount / plan.totalCount, `rate ${rate}`);
    assert(Math.abs(st.bytesUsed / st.bytesCapacity - 1 / rate) < 16 / (4 * 1024), `rate ${rate}`);
  }
});
