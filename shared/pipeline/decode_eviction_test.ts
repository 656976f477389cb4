import { assert, assertEquals } from "@std/assert";
import { BlockStore } from "../blockstore/mod.ts";
import { DEFAULTS, EMBEDDED_MODEL_DIR } from "../config/mod.ts";
import type { DecodeOutput } from "../model/mod.ts";
import { Model } from "../model/mod.ts";
import { lcg } from "../eviction/_testing.ts";
import { decodeEvictionOf, type DecodeEvictionSettings, SequenceKv } from "./decode_eviction.ts";
import { defaultKvSettings, resolveKvSettings } from "./kv_settings.ts";
import { runLocal } from "./local_run.ts";
import { REPO_DIR } from "../../tests/_harness/paths.ts";

const nLayers = 3, H = 2, hd = 2, bs = 8;

/** A step's output for one sequence as the model gives it: random attention over its rows. */
function fakeStep(lengths: Int32Array, rnd: () => number, kept: number): DecodeOutput {
  const lay = { lengths: [] as Int32Array[], gathered: [] as number[], steps: kept };
  const attention: Float32Array[] = [];
  for (let l = 0; l < nLayers; l++) {
    const prefix = Int32Array.from({ length: H }, (_, h) => lengths[l * H + h] - kept);
    const gathered = Math.max(...prefix) + 3; // padding between a head's prefix and the kept rows
    const width = gathered + kept + 1;
    const a = new Float32Array(H * width).map(() => rnd() ** 4);
    for (let h = 0; h < H; h++) a.fill(0, h * width + prefix[h], h * width + gathered);
    lay.lengths.push(prefix);
    lay.gathered.push(gathered);
    attention.push(a);
  }
  const zeros = Array.from({ length: nLayers }, () => new Float32Array(H * hd));
  return { logits: new Float32Array(4), newKeys: zeros, newValues: zeros, attention, attentionLayout: lay };
}

/** Steps a sequence for `steps` steps against a real store, checking what it holds after each. */
function soak(settings: DecodeEvictionSettings, steps: number, seed: number, longest = 240) {
  const rnd = lcg(seed);
  const store = new BlockStore({ nLayers, nKvHeads: H, headDim: hd, blockSize: bs, maxBlocks: 1 << 16 });
  const prompt = Int32Array.from({ length: nLayers * H }, () => 40 + Math.floor(rnd() * (longest - 40)));
  store.addSequence("s", (l, h) => {
    const n = prompt[l * H + h];
    return { keys: new Float32Array(n * hd), values: new Float32Array(n * hd) };
  });
  const kv = new SequenceKv({ nKvHeads: H, blockSize: bs }, prompt, 300, settings);
  const bound = kv.blockBound(steps);
  let kept = 0; // steps since the store was last changed by an eviction, as a kept cache counts them
  let evictions = 0;
  for (let t = 0; t < steps; t++) {
    const out = fakeStep(kv.lengths, rnd, kept);
    for (let l = 0; l < nLayers; l++) store.append("s", l, out.newKeys[l], out.newValues[l]);
    kv.observe(out, 0);
    kept++;
    if (kv.due && kv.evict(store, "s") > 0) {
      kept = 0;
      evictions++;
    }
    const lengths = kv.lengths;
    for (let l = 0; l < nLayers; l++) {
      assertEquals(store.lengths("s", l), lengths.subarray(l * H, (l + 1) * H));
    }
    let blocks = 0;
    for (const n of lengths) blocks += Math.ceil(n / bs);
    assertEquals(store.stats().usedBlocks, blocks, `step ${t}: blocks held follow the rows`);
    assert(blocks <= bound, `step ${t}: ${blocks} blocks over the reserved ${bound}`);
    if (settings.maxCacheTokens !== undefined) {
      for (const n of lengths) assert(n <= settings.maxCacheTokens + 1, `step ${t}: a head holds ${n}`);
    }
  }
  store.free("s");
  assertEquals(store.stats().usedBlocks, 0, "nothing left behind");
  return { kv, evictions };
}

const BASE: DecodeEvictionSettings = {
  policy: "kvcompress",
  rate: 1,
  protectedWindow: 8,
  observationWindow: 8,
  maxPool: 0,
  sink: 0,
  floor: 16,
  blockSize: bs,
  interval: 16,
};

Deno.test("SequenceKv holds max_cache_tokens in every head over 10k steps, and leaks no block", () => {
  for (const policy of ["kvcompress", "uniform", "recency"] as const) {
    const { kv, evictions } = soak({ ...BASE, policy, maxCacheTokens: 64 }, 10_000, 3, 64);
    assert(kv.report().peak_cache_tokens <= 64 + bs, `${policy}: peak ${kv.report().peak_cache_tokens}`);
    assert(evictions > 10_000 / bs / 2, `${policy}: only ${evictions} evictions`);
  }
});

Deno.test("SequenceKv holds the rate over 10k steps, and leaks no block", () => {
  for (const rate of [2, 8, 64]) {
    const { kv } = soak({ ...BASE, rate, maxPool: rate === 8 ? 7 : 0 }, 10_000, rate);
    const positions = 300 + 10_000, heads = nLayers * H;
    const total = kv.lengths.reduce((a, b) => a + b, 0);
    const least = 16 + bs - 1; // floor + a partial block per head
    assert(
      total <= Math.max(positions * heads / rate, heads * least) + heads * BASE.interval,
      `rate ${rate}: ${total} rows`,
    );
  }
});

Deno.test("decodeEvictionOf() is off without eviction and carries the request's settings", () => {
  const kv = defaultKvSettings(DEFAULTS.kv);
  assertEquals(decodeEvictionOf(kv), undefined);
  const on = resolveKvSettings(kv, { max_cache_tokens: 256, head_floor: 128, protected_window: 8 });
  const s = decodeEvictionOf(on)!;
  assertEquals([s.maxCacheTokens, s.floor, s.protectedWindow, s.rate], [256, 128, 8, 1]);
  assertEquals(decodeEvictionOf(resolveKvSettings(kv, { eviction_rate: 4 }))!.rate, 4);
});

// ---- through the model ------------------------------------------------------------

const model = await Model.load({ modelPath: EMBEDDED_MODEL_DIR });
const keptModel = await Model.load({ modelPath: EMBEDDED_MODEL_DIR, keepKv: true });

/** A passkey prompt of about `tokens` tokens, the training recipe's format. */
async function passkeyPrompt(tokens: number): Promise<number[]> {
  const py = `import sys, random; sys.path.insert(0, "${REPO_DIR}/infra/train"); import data
p, c, m = data.passkey_item(random.Random(5), [], ${Math.round(tokens * 4)}, True, 0.3); print(p)`;
  const out = await new Deno.Command("python3", { args: ["-c", py], stdout: "piped" }).output();
  return model.tokenizer.encode(new TextDecoder().decode(out.stdout).trimEnd()).slice(0, tokens);
}

const LONG = await passkeyPrompt(1600);

Deno.test("runLocal() with max_cache_tokens 256 holds every head at 256 + block_size over 400 tokens", async () => {
  assertEquals(LONG.length, 1600);
  const kv = resolveKvSettings(defaultKvSettings(DEFAULTS.kv), { max_cache_tokens: 256, codec: "raw" });
  const c = model.config;
  let steps = 0, worstHead = 0, worstBlocks = 0;
  const r = await runLocal(model, LONG, {
    kv,
    sampling: { maxTokens: 400, temperature: 0, topP: 1, ignoreEos: true },
    onStep: (store) => {
      if (!store.has("local")) return;
      steps++;
      let blocks = 0;
      for (let l = 0; l < c.nLayers; l++) {
        for (const n of store.lengths("local", l)) {
          worstHead = Math.max(worstHead, n);
          blocks += Math.ceil(n / kv.blockSize);
        }
      }
      // the store holds exactly the blocks those rows need: eviction frees what it drops
      assertEquals(store.stats().usedBlocks, blocks);
      worstBlocks = Math.max(worstBlocks, blocks);
    },
  });
  assertEquals(r.ids.length, 400);
  assert(steps >= 399, `${steps} steps watched`);
  assert(worstHead <= 256 + kv.blockSize, `a head held ${worstHead}`);
  assert(worstBlocks <= c.nLayers * c.nKvHeads * Math.ceil((256 + kv.blockSize) / kv.blockSize));
  // the report sees each step between its append and its eviction: one row more at most
  assert(r.kv.peak_cache_tokens! >= worstHead && r.kv.peak_cache_tokens! <= 256 + kv.blockSize);
  assert(r.kv.peak_blocks! >= worstBlocks && r.kv.decode_evictions! > 0);
});

Deno.test("runLocal() gives the same tokens as without eviction when the budget is never reached", async () => {
  const ids = LONG.slice(0, 300);
  const base = defaultKvSettings(DEFAULTS.kv);
  const sampling = { maxTokens: 120, temperature: 0, topP: 1, ignoreEos: true };
  const off = await runLocal(model, ids, { kv: base, sampling });
  const roomy = resolveKvSettings(base, { max_cache_tokens: 1024 });
  const on = await runLocal(model, ids, { kv: roomy, sampling, evictInterval: 4 });
  assertEquals(on.ids, off.ids);
  assertEquals(on.kv.decode_evictions, 0);
  assertEquals(on.kv.peak_cache_tokens, off.kv.peak_cache_tokens);
});

Deno.test("decode-time eviction on a model that keeps KV gives the plain model's tokens", async () => {
  // Evictions drop the kept cache; the attention columns of kept steps map to the right rows.
  const kv = resolveKvSettings(defaultKvSettings(DEFAULTS.kv), {
    eviction_rate: 4,
    protected_window: 8,
    observation_window: 8,
    sink: 0,
    codec: "raw",
  });
  const sampling = { maxTokens: 150, temperature: 0, topP: 1, ignoreEos: true };
  const ids = LONG.slice(0, 600);
  const plain = await runLocal(model, ids, { kv, sampling });
  const kept = await runLocal(keptModel, ids, { kv, sampling });
  assert(plain.kv.decode_evictions! > 0);
  assertEquals(kept.ids, plain.ids);
  assertEquals(kept.kv.peak_cache_tokens, plain.kv.peak_cache_tokens);
});

Deno.test("the models close", async () => {
  await model.close();
  await keptModel.close();
});
