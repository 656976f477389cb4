import { assert, assertAlmostEquals, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { STORIES260K, STORIES260K_GREEDY } from "../../tests/_harness/paths.ts";
import { KvrelayError } from "../errors.ts";
import { EMBEDDED_MODEL_DIR } from "../config/mod.ts";
import { generateDense, Model, parseLlama2cCheckpoint, sampleToken } from "./mod.ts";
import { type HeadCache, referenceStep } from "./reference.ts";
import { assertClose } from "./_testing.ts";

const model = await Model.load({ modelPath: STORIES260K.model, tokenizerPath: STORIES260K.tokenizer });
const { config: C, weights: W } = parseLlama2cCheckpoint(await Deno.readFile(STORIES260K.model));
const { nLayers, nKvHeads, headDim: HD, vocabSize: V } = C;
const PROMPT = model.tokenizer.encode("Once upon a time, there was a cat");

/** A deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Vector of (layer l, KV head h, position t) in a (nKv, nPos, hd) buffer. */
function vec(buf: Float32Array, nPos: number, h: number, t: number): Float32Array {
  return buf.subarray((h * nPos + t) * HD, (h * nPos + t + 1) * HD);
}

Deno.test("generateDense() greedy from BOS alone reproduces the known stories260K text", async () => {
  // README: greedy decoding from BOS alone "yields" this text; generation goes on past it,
  // so the known text must be a prefix of the output.
  const ids = await generateDense(model, model.tokenizer.encode(""), { maxTokens: 64 });
  const text = model.tokenizer.decode(ids);
  assert(text.length >= STORIES260K_GREEDY.length, `only ${ids.length} tokens: ${text}`);
  assertEquals(text.slice(0, STORIES260K_GREEDY.length), STORIES260K_GREEDY);
});

Deno.test("Model.prefill() logits at each position equal incremental decode-step logits", async () => {
  const full = await model.prefill(PROMPT);
  let cache = full.layers.map(() => ({ keys: new Float32Array(0), values: new Float32Array(0) }));
  for (let t = 0; t < PROMPT.length; t++) {
    const step = await model.decode({
      tokens: [PROMPT[t]],
      positions: [t],
      past: cache,
      pastLengths: cache.map(() => new Int32Array(nKvHeads).fill(t)),
    });
    const pre = t === PROMPT.length - 1 ? full : await model.prefill(PROMPT.slice(0, t + 1));
    assertClose(step.logits, pre.logits, { tol: 1e-4, what: `logits at position ${t}` });
    // The new K/V equal the prefill cache at position t (keys after RoPE).
    for (let l = 0; l < nLayers; l++) {
      for (let h = 0; h < nKvHeads; h++) {
        assertClose(
          step.newKeys[l].subarray(h * HD, (h + 1) * HD),
          vec(full.layers[l].keys, full.nPos, h, t),
          { tol: 1e-4, what: "k" },
        );
      }
    }
    cache = cache.map((c, l) => {
      const grow = (old: Float32Array, add: Float32Array) => {
        const out = new Float32Array(old.length + add.length);
        for (let h = 0; h < nKvHeads; h++) {
          out.set(old.subarray(h * t * HD, (h + 1) * t * HD), h * (t + 1) * HD);
          out.set(add.subarray(h * HD, (h + 1) * HD), (h * (t + 1) + t) * HD);
        }
        return out;
      };
      return { keys: grow(c.keys, step.newKeys[l]), values: grow(c.values, step.newValues[l]) };
    });
  }
});

Deno.test("Model.prefill() matches a pure-TS reference: logits, KV cache and the KV-Compress metric", async () => {
  const ids = PROMPT.slice(0, 10);
  const window = 4;
  const out = await model.prefill(ids, { observationWindow: window });
  assertEquals(out.nPos, ids.length);
  assertEquals(out.metric.length, nLayers * nKvHeads * ids.length);
  const cache: HeadCache[][] = Array.from(
    { length: nLayers },
    () => Array.from({ length: nKvHeads }, () => ({ keys: [], values: [] })),
  );
  const metric = new Float32Array(nLayers * nKvHeads * ids.length);
  const group = C.nHeads / nKvHeads;
  let last;
  for (let t = 0; t < ids.length; t++) {
    last = referenceStep(C, W, { token: ids[t], pos: t, cache });
    for (let l = 0; l < nLayers; l++) {
      for (let h = 0; h < nKvHeads; h++) {
        cache[l][h].keys.push(last.newKeys[l][h]);
        cache[l][h].values.push(last.newValues[l][h]);
        if (t < ids.length - window) continue;
        for (let j = 0; j < group; j++) {
          last.probs[l][h * group + j].forEach((p, s) =>
            metric[(l * nKvHeads + h) * ids.length + s] += p * p
          );
        }
      }
    }
  }
  assertClose(out.logits, last!.logits, { tol: 1e-4, what: "logits" });
  assertClose(out.metric, metric, { tol: 1e-5, what: "metric" });
  for (let l = 0; l < nLayers; l++) {
    for (let h = 0; h < nKvHeads; h++) {
      for (let t = 0; t < ids.length; t++) {
        assertClose(vec(out.layers[l].values, ids.length, h, t), cache[l][h].values[t], {
          tol: 1e-5,
          what: "v",
        });
        assertClose(vec(out.layers[l].keys, ids.length, h, t), cache[l][h].keys[t], { tol: 1e-5, what: "k" });
      }
    }
  }
  // Sanity: each query's probabilities sum to 1, so a head's metric sums to at most w * group,
  // and the future of the first query never counts (causal).
  for (let lh = 0; lh < nLayers * nKvHeads; lh++) {
    const row = out.metric.subarray(lh * ids.length, (lh + 1) * ids.length);
    const s = row.reduce((a, b) => a + b, 0);
    assert(s > 0 && s <= window * group + 1e-5, `metric sum ${s}`);
  }
  const whole = await model.prefill(ids, { observationWindow: 1 });
  // With w = 1 only the last query counts: Σ_t metric = Σ_heads Σ_t p² ≥ group / nPos.
  assert(whole.metric.subarray(0, ids.length).reduce((a, b) => a + b, 0) >= group / ids.length - 1e-6);
});

Deno.test("Model.decode() per-head pastLengths equal a reference with the evicted KVs removed", async () => {
  const rand = rng(7);
  const seqs = [PROMPT, model.tokenizer.encode("Lily saw a big red ball in the park")];
  const B = seqs.length;
  const pres = await Promise.all(seqs.map((s) => model.prefill(s)));
  const P = Math.max(...pres.map((p) => p.nPos)) + 2; // extra padding on purpose
  const past = Array.from({ length: nLayers }, () => ({
    keys: new Float32Array(B * nKvHeads * P * HD).map(() => 50 * (rand() - 0.5)), // finite garbage
    values: new Float32Array(B * nKvHeads * P * HD).map(() => 50 * (rand() - 0.5)),
  }));
  const pastLengths = Array.from({ length: nLayers }, () => new Int32Array(B * nKvHeads));
  const kept: HeadCache[][][] = []; // [b][layer][head]
  for (let b = 0; b < B; b++) {
    const n = pres[b].nPos;
    kept.push([]);
    for (let l = 0; l < nLayers; l++) {
      kept[b].push([]);
      for (let h = 0; h < nKvHeads; h++) {
        // Each head keeps its own random subset (always the first and last position).
        const keep = Array.from({ length: n }, (_, t) => t).filter((t) =>
          t === 0 || t === n - 1 || rand() < 0.5
        );
        const hc: HeadCache = { keys: [], values: [] };
        keep.forEach((t, i) => {
          const at = ((b * nKvHeads + h) * P + i) * HD;
          past[l].keys.set(vec(pres[b].layers[l].keys, n, h, t), at);
          past[l].values.set(vec(pres[b].layers[l].values, n, h, t), at);
          hc.keys.push(vec(pres[b].layers[l].keys, n, h, t));
          hc.values.push(vec(pres[b].layers[l].values, n, h, t));
        });
        pastLengths[l][b * nKvHeads + h] = keep.length;
        kept[b][l].push(hc);
      }
    }
  }
  const tokens = pres.map((p) => sampleToken(p.logits, { temperature: 0 }));
  const positions = pres.map((p) => p.nPos); // true positions, not the compacted lengths
  const out = await model.decode({ tokens, positions, past, pastLengths });
  assertEquals(out.logits.length, B * V);
  for (let b = 0; b < B; b++) {
    const ref = referenceStep(C, W, { token: tokens[b], pos: positions[b], cache: kept[b] });
    assertClose(out.logits.subarray(b * V, (b + 1) * V), ref.logits, {
      tol: 1e-4,
      what: `logits of sequence ${b}`,
    });
    for (let l = 0; l < nLayers; l++) {
      assertClose(
        out.newValues[l].subarray(b * nKvHeads * HD, (b + 1) * nKvHeads * HD),
        ref.newValues[l].flatMap((v) => [...v]),
        { tol: 1e-5, what: "v" },
      );
    }
  }
  // Eviction changed the result: the full cache gives different logits.
  const full = await model.decode({
    tokens: [tokens[0]],
    positions: [positions[0]],
    past: pres[0].layers,
    pastLengths: pres[0].layers.map(() => new Int32Array(nKvHeads).fill(pres[0].nPos)),
  });
  const diff = full.logits.reduce((m, v, i) => Math.max(m, Math.abs(v - out.logits[i])), 0);
  assert(diff > 1e-3, `evicting changed logits by only ${diff}`);
});

Deno.test("Model.decode() rejects inconsistent batches", async () => {
  const past = Array.from(
    { length: nLayers },
    () => ({ keys: new Float32Array(0), values: new Float32Array(0) }),
  );
  const lengths = Array.from({ length: nLayers }, () => new Int32Array(nKvHeads));
  await assertRejects(
    () => model.decode({ tokens: [5], positions: [], past, pastLengths: lengths }),
    TypeError,
  );
  await assertRejects(
    () =>
      model.decode({
        tokens: [5],
        positions: [0],
        past,
        pastLengths: lengths.map(() => Int32Array.of(1, 0, 0, 0)),
      }),
    RangeError,
  );
  await assertRejects(
    () => model.decode({ tokens: [V], positions: [0], past, pastLengths: lengths }),
    KvrelayError,
  );
  await assertRejects(() => model.prefill([]), KvrelayError);
});

Deno.test("sampleToken() is argmax at temperature 0 and seeded sampling is reproducible", () => {
  const logits = Float32Array.of(0.1, 3, -1, 2.9);
  assertEquals(sampleToken(logits, { temperature: 0 }), 1);
  const draw = (seed: number) => {
    const r = rng(seed);
    return Array.from({ length: 20 }, () => sampleToken(logits, { temperature: 1, rng: r }));
  };
  assertEquals(draw(3), draw(3));
  const counts = [0, 0, 0, 0];
  const r = rng(1);
  for (let i = 0; i < 2000; i++) counts[sampleToken(logits, { temperature: 1, topP: 0.6, rng: r })]++;
  assertEquals(counts[0] + counts[2], 0); // top-p 0.6 keeps only ids 1 and 3
  assertAlmostEquals(counts[1] / 2000, Math.exp(3) / (Math.exp(3) + Math.exp(2.9)), 0.05);
  assertThrows(() => sampleToken(logits, { temperature: -1 }), RangeError);
});

Deno.test("Model.decode() attention equals prefill's metric of the same last query (w = 1)", async () => {
  // kvrelay-tiny is GQA (2 query heads a KV head): the sum over each group is tested too.
  const tiny = await Model.load({ modelPath: EMBEDDED_MODEL_DIR });
  try {
    const c = tiny.config;
    const ids = tiny.tokenizer.encode("Below is a list of keys and their values. Remember them.");
    const T = ids.length;
    const pre = await tiny.prefill(ids.slice(0, T - 1));
    const want = await tiny.prefill(ids, { observationWindow: 1 });
    // Two sequences of T - 1 rows padded to P = T: column T - 1 is masked, column T is new.
    const padded = (x: Float32Array) => {
      const row = c.headDim, out = new Float32Array(2 * c.nKvHeads * T * row);
      for (let b = 0; b < 2; b++) {
        for (let h = 0; h < c.nKvHeads; h++) {
          out.set(x.subarray(h * (T - 1) * row, (h + 1) * (T - 1) * row), (b * c.nKvHeads + h) * T * row);
        }
      }
      return out;
    };
    const step = await tiny.decode({
      tokens: [ids[T - 1], ids[T - 1]],
      positions: [T - 1, T - 1],
      past: pre.layers.map((l) => ({ keys: padded(l.keys), values: padded(l.values) })),
      pastLengths: pre.layers.map(() => new Int32Array(2 * c.nKvHeads).fill(T - 1)),
    });
    assert(step.attention && step.attentionLayout);
    assertEquals(step.attentionLayout.gathered, Array(c.nLayers).fill(T));
    for (let l = 0; l < c.nLayers; l++) {
      const a = step.attention[l]; // (2, nKv, T + 1)
      assertEquals(a.length, 2 * c.nKvHeads * (T + 1));
      for (let bh = 0; bh < 2 * c.nKvHeads; bh++) {
        const h = bh % c.nKvHeads;
        const row = a.subarray(bh * (T + 1), (bh + 1) * (T + 1));
        assertEquals(row[T - 1], 0, "a masked padding column has no attention");
        const got = Float32Array.of(...row.subarray(0, T - 1), row[T]);
        const ref = want.metric.subarray((l * c.nKvHeads + h) * T, (l * c.nKvHeads + h + 1) * T);
        assertClose(got, ref, { tol: 1e-5, what: `layer ${l} head ${h}` });
      }
    }
  } finally {
    await tiny.close();
  }
});
