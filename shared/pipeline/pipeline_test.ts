import { assert, assertEquals, assertThrows } from "@std/assert";
import { STORIES260K } from "../../tests/_harness/paths.ts";
import { asKvrelayError } from "../errors.ts";
import { Model } from "../model/mod.ts";
import { writeMetric, writeRawLayer } from "../kvwire/mod.ts";
import { DEFAULTS } from "../config/mod.ts";
import type { KvSettings } from "../handoff/contract.ts";
import { CompressionJob } from "./compress_stage.ts";
import { decodeLayerBundle } from "./decode_stage.ts";
import { generateThroughEngine } from "./engine_testing.ts";
import { defaultKvSettings } from "./kv_settings.ts";
import { runLocal } from "./local_run.ts";

const shape = { requestId: "r", nLayers: 2, nKvHeads: 2, nPos: 40, headDim: 8 };

function synthetic(seed: number) {
  let s = seed;
  const rnd = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
  const n = shape.nKvHeads * shape.nPos * shape.headDim;
  const layers = [0, 1].map(() => ({
    keys: Float32Array.from({ length: n }, rnd),
    values: Float32Array.from({ length: n }, rnd),
  }));
  const metric = Float32Array.from(
    { length: shape.nLayers * shape.nKvHeads * shape.nPos },
    () => Math.abs(rnd()),
  );
  const bundles = [
    writeMetric({ ...shape, metric }),
    ...layers.map((l, layer) => writeRawLayer({ ...shape, layer, ...l })),
  ];
  return { layers, bundles };
}

const kv = (over: Partial<KvSettings>): KvSettings => ({ ...defaultKvSettings(DEFAULTS.kv), ...over });
const expect = { nLayers: 2, nKvHeads: 2, headDim: 8, maxElements: 1 << 20 };

Deno.test("CompressionJob.finish() with a lossless codec hands decode exactly the survivors of each head", () => {
  const { layers, bundles } = synthetic(1);
  const job = new CompressionJob(
    "r",
    kv({ codec: "zstd", evictionRate: 2, blockSize: 4, protectedWindow: 8, sink: 4 }),
  );
  bundles.forEach((b, i) => job.accept(i, b));
  const out = job.finish();
  assert(out.stats.keptFraction <= 0.5 && out.stats.keptFraction > 0.3, `kept ${out.stats.keptFraction}`);
  for (const [l, bytes] of out.encoded.entries()) {
    const d = decodeLayerBundle(bytes, expect);
    assertEquals(d.layer, l);
    for (const [h, head] of d.heads.entries()) {
      // Protected window and sink survive.
      for (const p of [0, 1, 2, 3, 32, 39]) {
        assert(head.positions.includes(p), `layer ${l} head ${h} lost ${p}`);
      }
      head.positions.forEach((p, i) => {
        const src = (h * shape.nPos + p) * 8;
        assertEquals(
          Array.from(head.keys.subarray(i * 8, i * 8 + 8)),
          Array.from(layers[l].keys.subarray(src, src + 8)),
        );
        assertEquals(
          Array.from(head.values.subarray(i * 8, i * 8 + 8)),
          Array.from(layers[l].values.subarray(src, src + 8)),
        );
      });
    }
  }
});

Deno.test("CompressionJob with kvsort keeps every value within the relative bound, per head and per layer frame", () => {
  const { layers, bundles } = synthetic(2);
  for (const frames of ["head", "layer"] as const) {
    const job = new CompressionJob("r", kv({ codec: "kvsort", errorBound: 1e-2, errorMode: "rel", frames }));
    bundles.forEach((b, i) => job.accept(i, b));
    for (const [l, bytes] of job.finish().encoded.entries()) {
      const d = decodeLayerBundle(bytes, expect);
      for (const [h, head] of d.heads.entries()) {
        const src = layers[l].keys.subarray(h * shape.nPos * 8, (h + 1) * shape.nPos * 8);
        // The bound is relative to the frame's range; a layer frame spans every head.
        const frame = frames === "head" ? src : layers[l].keys;
        let lo = Infinity, hi = -Infinity;
        for (const x of frame) (lo = Math.min(lo, x), hi = Math.max(hi, x));
        const bound = 1e-2 * (hi - lo);
        for (let i = 0; i < src.length; i++) {
          assert(Math.abs(head.keys[i] - src[i]) <= bound * (1 + 1e-6), `${frames} l${l} h${h} i${i}`);
        }
      }
    }
  }
});

Deno.test("decodeLayerBundle() turns a corrupted frame into a corrupt_bundle error, never values", () => {
  const { bundles } = synthetic(3);
  const job = new CompressionJob("r", kv({ codec: "kvsort", errorBound: 1e-3 }));
  bundles.forEach((b, i) => job.accept(i, b));
  const good = job.finish().encoded[0];
  let caught = 0;
  for (let i = good.length - 200; i < good.length; i += 7) {
    const bad = good.slice();
    bad[i] ^= 0x5a;
    try {
      decodeLayerBundle(bad, expect);
    } catch (e) {
      assertEquals(asKvrelayError(e).code, "corrupt_bundle");
      caught++;
    }
  }
  assert(caught > 20, `only ${caught} corruptions caught`);
  assertThrows(() => decodeLayerBundle(good.subarray(0, good.length - 1), expect));
});

Deno.test("CompressionJob.finish() fails as corrupt_bundle when a layer never arrived", () => {
  const { bundles } = synthetic(4);
  const job = new CompressionJob("r", kv({}));
  job.accept(0, bundles[0]);
  job.accept(1, bundles[1]);
  const err = assertThrows(() => job.finish());
  assertEquals(asKvrelayError(err).code, "corrupt_bundle");
});

Deno.test("DecodeEngine batches sequences without changing any sequence's tokens", async () => {
  const model = await Model.load({ modelPath: STORIES260K.model, tokenizerPath: STORIES260K.tokenizer });
  try {
    const settings = kv({ codec: "zstd", evictionRate: 2, blockSize: 4, protectedWindow: 4 });
    const prompts = ["Once upon a time", "The dog ran to the park and", "Lily had a red ball"];
    const sampling = { maxTokens: 24, temperature: 0, topP: 1 };
    const solo = [];
    for (const p of prompts) {
      solo.push((await runLocal(model, model.tokenizer.encode(p), { kv: settings, sampling })).ids);
    }

    const { got, engine } = await generateThroughEngine(model, prompts, settings, prompts.map(() => 24));
    assertEquals(got, solo);
    assert(engine.steps < 24 * prompts.length, `steps ${engine.steps}: sequences were batched`);
  } finally {
    await model.close();
  }
});

Deno.test("CompressionJob pools the metric with max_pool: the neighbours of a high-scoring KV survive with it", () => {
  // Low noise everywhere, a spike at position 20 of every head, and its six neighbours at 0:
  // without pooling they are the first to go; with kernel 7 they share the spike's score.
  const spike = 20;
  const metric = new Float32Array(shape.nLayers * shape.nKvHeads * shape.nPos);
  for (let i = 0; i < metric.length; i++) {
    const p = i % shape.nPos;
    metric[i] = p === spike ? 1 : Math.abs(p - spike) <= 3 ? 0 : 0.1 + 0.01 * (p % 7);
  }
  const { bundles } = synthetic(3);
  bundles[0] = writeMetric({ ...shape, metric });
  const keptAround = (maxPool: number) => {
    const job = new CompressionJob(
      "r",
      kv({ codec: "zstd", evictionRate: 2, blockSize: 1, protectedWindow: 8, sink: 4, maxPool }),
    );
    bundles.forEach((b, i) => job.accept(i, b));
    const heads = job.finish().encoded.flatMap((b) => decodeLayerBundle(b, expect).heads);
    return heads.map((h) => [17, 18, 19, 20, 21, 22, 23].filter((p) => h.positions.includes(p)));
  };
  for (const kept of keptAround(0)) assertEquals(kept, [20]);
  for (const kept of keptAround(7)) assertEquals(kept, [17, 18, 19, 20, 21, 22, 23]);
});
