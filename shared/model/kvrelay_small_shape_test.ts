/**
 * The model runtime on kvrelay-small's shape before it is trained (random weights, 2 of its 6
 * layers, written as infra/train/train.py exports: ./_random_checkpoint.ts): queries 8 heads ×
 * 128 = 1024 wide over a hidden size of 512, 4 KV heads of head_dim 128, vocab 8192 and a
 * 4096-token context, none of which kvrelay-tiny has. The graphs are held to the pure-TS
 * reference (./reference.ts): prefill's logits, K/V and metric, and a decode step at the last
 * position of the context with a past of its own length in each KV head.
 */
import { assert, assertEquals, assertRejects } from "@std/assert";
import { KvrelayError } from "../errors.ts";
import { loadCheckpoint } from "./load.ts";
import { Model } from "./model.ts";
import { type HeadCache, referenceStep } from "./reference.ts";
import { SMALL_MODEL_SHAPE, writeRandomCheckpoint } from "./_random_checkpoint.ts";
import { assertClose } from "./_testing.ts";

const DIR = await Deno.makeTempDir({ prefix: "kvrelay-small-" });
await writeRandomCheckpoint(DIR, { ...SMALL_MODEL_SHAPE, layers: 2 });
const { config: C, weights: W, tokenizer } = await loadCheckpoint(DIR);
const model = await Model.fromWeights(C, W, { tokenizer });
const { nLayers, nKvHeads, headDim: HD } = C;
const GROUP = C.nHeads / nKvHeads;
/** Ids from both ends of the vocabulary (past kvrelay-tiny's 4096 too). */
const IDS = [8191, 4096, 17, 5000, 3, 8000, 123, 4095];
const T = IDS.length;

/** Vector of KV head h at position t in a (nKv, nPos, hd) buffer. */
const vec = (buf: Float32Array, nPos: number, h: number, t: number) =>
  buf.subarray((h * nPos + t) * HD, (h * nPos + t + 1) * HD);

/** Reference steps over `ids` from position 0: each step's result and the caches they build. */
function referencePrefill(ids: number[]) {
  const cache: HeadCache[][] = Array.from(
    { length: nLayers },
    () => Array.from({ length: nKvHeads }, () => ({ keys: [], values: [] })),
  );
  const steps = ids.map((token, pos) => {
    const r = referenceStep(C, W, { token, pos, cache });
    for (let l = 0; l < nLayers; l++) {
      for (let h = 0; h < nKvHeads; h++) {
        cache[l][h].keys.push(r.newKeys[l][h]);
        cache[l][h].values.push(r.newValues[l][h]);
      }
    }
    return r;
  });
  return { steps, cache };
}

Deno.test("loadCheckpoint() reads kvrelay-small's folder as train.py exports it: queries 1024 wide over hidden 512, 4 KV heads of 128, vocab 8192, 4096 positions", () => {
  assertEquals(
    [C.dim, C.nHeads, C.nKvHeads, C.headDim, C.hiddenDim, C.vocabSize, C.maxSeqLen, C.ropeTheta],
    [512, 8, 4, 128, 1536, 8192, 4096, 10000],
  );
  assertEquals(W.classifier, undefined, "tied embeddings: no lm_head.weight");
  assertEquals(W.layers[0].wq.length, 1024 * 512);
  assertEquals(W.layers[0].wo.length, 512 * 1024);
  assertEquals([tokenizer.vocabSize, tokenizer.bosId, tokenizer.eosId], [8192, 0, 1]);
});

Deno.test("Model.prefill() on kvrelay-small's shape matches the pure-TS reference: logits, K/V (4, T, 128) and the metric", async () => {
  const window = 4;
  const out = await model.prefill(IDS, { observationWindow: window });
  const { steps, cache } = referencePrefill(IDS);
  assertClose(out.logits, steps[T - 1].logits, { tol: 1e-4, what: "logits" });
  const metric = new Float32Array(nLayers * nKvHeads * T);
  for (let t = T - window; t < T; t++) {
    for (let l = 0; l < nLayers; l++) {
      for (let q = 0; q < C.nHeads; q++) {
        const h = Math.floor(q / GROUP);
        steps[t].probs[l][q].forEach((p, s) => metric[(l * nKvHeads + h) * T + s] += p * p);
      }
    }
  }
  assertClose(out.metric, metric, { tol: 1e-5, what: "metric" });
  for (let l = 0; l < nLayers; l++) {
    assertEquals(out.layers[l].keys.length, nKvHeads * T * HD);
    for (let h = 0; h < nKvHeads; h++) {
      for (let t = 0; t < T; t++) {
        assertClose(vec(out.layers[l].keys, T, h, t), cache[l][h].keys[t], {
          tol: 1e-5,
          what: `k ${l} ${h} ${t}`,
        });
        assertClose(vec(out.layers[l].values, T, h, t), cache[l][h].values[t], {
          tol: 1e-5,
          what: `v ${l} ${h} ${t}`,
        });
      }
    }
  }
});

Deno.test("Model.decode() on kvrelay-small's shape matches the reference at the context's last position, each KV head with a past of its own length", async () => {
  const pre = await model.prefill(IDS);
  const { cache } = referencePrefill(IDS);
  const kept = [T, 5, 1, 0]; // rows each KV head keeps (the first ones), padded to T
  const pos = C.maxSeqLen - 1;
  const refCache = cache.map((heads) =>
    heads.map((hc, h) => ({ keys: hc.keys.slice(0, kept[h]), values: hc.values.slice(0, kept[h]) }))
  );
  const lengths = Int32Array.from(kept);
  const out = await model.decode({
    tokens: [8190],
    positions: [pos],
    past: pre.layers,
    pastLengths: pre.layers.map(() => lengths),
  });
  const ref = referenceStep(C, W, { token: 8190, pos, cache: refCache });
  assertClose(out.logits, ref.logits, { tol: 1e-4, what: "logits" });
  for (let l = 0; l < nLayers; l++) {
    assertClose(out.newKeys[l], ref.newKeys[l].flatMap((k) => [...k]), { tol: 1e-5, what: `new k ${l}` });
    assertClose(out.newValues[l], ref.newValues[l].flatMap((v) => [...v]), { tol: 1e-5, what: `new v ${l}` });
    // the attention metric decode-time eviction ranks by: kept columns, masked padding, the new token
    const attn = out.attention![l];
    for (let h = 0; h < nKvHeads; h++) {
      const want = new Float32Array(T + 1);
      for (let j = 0; j < GROUP; j++) {
        const p = ref.probs[l][h * GROUP + j];
        for (let s = 0; s < kept[h]; s++) want[s] += p[s] * p[s];
        want[T] += p[kept[h]] * p[kept[h]];
      }
      assertClose(attn.subarray(h * (T + 1), (h + 1) * (T + 1)), want, {
        tol: 1e-5,
        what: `attention ${l} ${h}`,
      });
    }
  }
});

Deno.test("Model on kvrelay-small's shape refuses position 4096 and a prompt past 4096 tokens", async () => {
  const past = Array.from(
    { length: nLayers },
    () => ({ keys: new Float32Array(0), values: new Float32Array(0) }),
  );
  const lengths = Array.from({ length: nLayers }, () => new Int32Array(nKvHeads));
  await assertRejects(
    () => model.decode({ tokens: [5], positions: [4096], past, pastLengths: lengths }),
    RangeError,
  );
  const err = await assertRejects(() => model.prefill(new Array(4097).fill(5)), KvrelayError);
  assert(err.message.includes("4096"), err.message);
});

Deno.test("the model closes and its folder goes", async () => {
  await model.close();
  await Deno.remove(DIR, { recursive: true });
});
