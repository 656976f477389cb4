/**
 * The kept-KV decode path on the CPU provider: the same IO-bound session and graph the
 * WebGPU device uses, with the present KV landing in host memory instead of GPU buffers.
 */
import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { STORIES260K } from "../../tests/_harness/paths.ts";
import { KvrelayError } from "../errors.ts";
import { attentionBias } from "./kept_kv.ts";
import { MASKED } from "./llama_graph.ts";
import { Model } from "./model.ts";
import type { LayerKv } from "./steps.ts";

const plain = await Model.load({ modelPath: STORIES260K.model, tokenizerPath: STORIES260K.tokenizer });
const kept = await Model.load({
  modelPath: STORIES260K.model,
  tokenizerPath: STORIES260K.tokenizer,
  keepKv: true,
});
const { nLayers, nKvHeads: H, headDim: HD, vocabSize: V } = plain.config;

function maxDiff(a: Float32Array, b: Float32Array): number {
  assertEquals(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

Deno.test("attentionBias() masks only the padding between a head's prefix and the gathered length", () => {
  const b = attentionBias(Int32Array.of(1, 3), 3, 5); // 2 heads, gathered 3, 2 kept steps, + new
  assertEquals([...b.subarray(0, 6)], [0, MASKED, MASKED, 0, 0, 0]);
  assertEquals([...b.subarray(6, 12)], [0, 0, 0, 0, 0, 0]);
  assertThrows(() => attentionBias(Int32Array.of(4), 3, 5), RangeError);
});

/** Per-sequence growing caches of (nKv, n, hd), gathered into (B, nKv, P, hd) with per-head lengths. */
function gather(seqs: LayerKv[][], lengths: number[][][]) {
  const B = seqs.length;
  const past: LayerKv[] = [];
  const pastLengths: Int32Array[] = [];
  let P = 1;
  for (const ls of lengths) for (const hs of ls) for (const n of hs) P = Math.max(P, n);
  for (let l = 0; l < nLayers; l++) {
    const keys = new Float32Array(B * H * P * HD), values = new Float32Array(B * H * P * HD);
    const lens = new Int32Array(B * H);
    for (let b = 0; b < B; b++) {
      const n0 = seqs[b][l].keys.length / (H * HD);
      for (let h = 0; h < H; h++) {
        const n = lengths[b][l][h];
        lens[b * H + h] = n;
        keys.set(seqs[b][l].keys.subarray(h * n0 * HD, (h * n0 + n) * HD), (b * H + h) * P * HD);
        values.set(seqs[b][l].values.subarray(h * n0 * HD, (h * n0 + n) * HD), (b * H + h) * P * HD);
      }
    }
    past.push({ keys, values });
    pastLengths.push(lens);
  }
  return { past, pastLengths };
}

Deno.test("Model.decodeKeep() continuing from kept KV gives decode()'s logits on the gathered past", async () => {
  assert(kept.keepsKv && !plain.keepsKv);
  assertEquals(kept.device, "cpu");
  const prompts = ["Once upon a time, there was a cat", "Lily saw a dog"].map((p) =>
    plain.tokenizer.encode(p)
  );
  const pre = await Promise.all(prompts.map((ids) => plain.prefill(ids)));
  // Ragged heads: head 1 of sequence 0 keeps only its first 5 positions (as if evicted).
  const cpuKv: LayerKv[][] = pre.map((p) => p.layers.map((l) => ({ ...l })));
  const lengths = pre.map((p, b) =>
    p.layers.map(() => Array.from({ length: H }, (_, h) => (b === 0 && h === 1 ? 5 : p.nPos)))
  );
  // The reference keeps a compact cache per head: gathered prefix, then the appended tokens.
  const refKv = pre.map((p, b) =>
    p.layers.map((layer, l) => ({
      heads: Array.from({ length: H }, (_, h) => ({
        keys: [...chunks(layer.keys, p.nPos, h)].slice(0, lengths[b][l][h]),
        values: [...chunks(layer.values, p.nPos, h)].slice(0, lengths[b][l][h]),
      })),
    }))
  );
  let tokens = pre.map((p) => argmax(p.logits));
  let positions = pre.map((p) => p.nPos);
  let state = await kept.decodeKeep({ tokens, positions, ...gather(cpuKv, lengths) });
  for (let step = 0; step < 4; step++) {
    // Reference: plain decode over the compact per-head caches.
    const refSeqs = refKv.map((s) =>
      s.map((layer) => {
        const n = Math.max(...layer.heads.map((h) => h.keys.length));
        const keys = new Float32Array(H * n * HD), values = new Float32Array(H * n * HD);
        layer.heads.forEach((h, hi) => {
          h.keys.forEach((k, t) => keys.set(k, (hi * n + t) * HD));
          h.values.forEach((v, t) => values.set(v, (hi * n + t) * HD));
        });
        return { keys, values };
      })
    );
    const refLengths = refKv.map((s) => s.map((layer) => layer.heads.map((h) => h.keys.length)));
    const ref = await plain.decode({ tokens, positions, ...gather(refSeqs, refLengths) });
    const worst = maxDiff(state.logits, ref.logits);
    assert(worst < 1e-4, `step ${step}: kept logits differ by ${worst}`);
    for (let l = 0; l < nLayers; l++) assert(maxDiff(state.newKeys[l], ref.newKeys[l]) < 1e-5);
    refKv.forEach((s, b) =>
      s.forEach((layer, l) =>
        layer.heads.forEach((h, hi) => {
          h.keys.push(ref.newKeys[l].slice((b * H + hi) * HD, (b * H + hi + 1) * HD));
          h.values.push(ref.newValues[l].slice((b * H + hi) * HD, (b * H + hi + 1) * HD));
        })
      )
    );
    tokens = tokens.map((_, b) => argmax(state.logits.subarray(b * V, (b + 1) * V)));
    positions = positions.map((p) => p + 1);
    const prev = state.kept;
    assertEquals(prev.steps, step + 1);
    state = await kept.decodeKeep({ tokens, positions, kept: prev });
    assertEquals(prev.location, "disposed", "a step consumes the kept KV it continues from");
  }
  state.kept.dispose();
});

Deno.test("Model.decodeKeep() refuses a used kept cache, a batch of another size, and a plain model", async () => {
  const pre = await kept.prefill([1, 300]);
  const lengths = pre.layers.map(() => new Int32Array(H).fill(2));
  const first = await kept.decodeKeep({
    tokens: [5],
    positions: [2],
    past: pre.layers,
    pastLengths: lengths,
  });
  const again = await kept.decodeKeep({ tokens: [6], positions: [3], kept: first.kept });
  const err = await assertRejects(() => kept.decodeKeep({ tokens: [7], positions: [4], kept: first.kept }));
  assert(err instanceof KvrelayError);
  await assertRejects(
    () => kept.decodeKeep({ tokens: [7, 8], positions: [4, 4], kept: again.kept }),
    TypeError,
  );
  assertEquals(again.kept.location, "disposed", "consumed even when the step fails");
  await assertRejects(
    () => plain.decodeKeep({ tokens: [5], positions: [2], past: pre.layers, pastLengths: lengths }),
    TypeError,
  );
});

Deno.test("Model.decode() on a keepKv model equals the plain model's decode", async () => {
  const pre = await plain.prefill(plain.tokenizer.encode("The dog ran"));
  const lengths = pre.layers.map(() => new Int32Array(H).fill(pre.nPos));
  const batch = { tokens: [42], positions: [pre.nPos], past: pre.layers, pastLengths: lengths };
  const [a, b] = [await plain.decode(batch), await kept.decode(batch)];
  assert(maxDiff(a.logits, b.logits) < 1e-5);
});

Deno.test("Model.close() disposes kept caches still held", async () => {
  const m = await Model.load({
    modelPath: STORIES260K.model,
    tokenizerPath: STORIES260K.tokenizer,
    keepKv: true,
  });
  const pre = await m.prefill([1, 300]);
  const lengths = pre.layers.map(() => new Int32Array(H).fill(2));
  const out = await m.decodeKeep({ tokens: [5], positions: [2], past: pre.layers, pastLengths: lengths });
  assertEquals(out.kept.location, "cpu");
  await m.close();
  assertEquals(out.kept.location, "disposed");
});

Deno.test({
  name: "kept-KV models close",
  fn: async () => {
    await plain.close();
    await kept.close();
  },
});

function* chunks(buf: Float32Array, nPos: number, h: number): Generator<Float32Array> {
  for (let t = 0; t < nPos; t++) yield buf.slice((h * nPos + t) * HD, (h * nPos + t + 1) * HD);
}

function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}
