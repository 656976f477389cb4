import { assert, assertEquals, assertThrows } from "@std/assert";
import { STORIES260K } from "../../tests/_harness/paths.ts";
import { asKvrelayError } from "../errors.ts";
import { Model } from "../model/mod.ts";
import { DEFAULTS } from "../config/mod.ts";
import type { KvSettings } from "../handoff/contract.ts";
import { CompressionJob, cpuFrameEncoder, type LayerEncoding, type PrefillKv } from "./compress_stage.ts";
import { decodeLayerBundle } from "./decode_stage.ts";
import { generateThroughEngine } from "./engine_testing.ts";
import { defaultKvSettings } from "./kv_settings.ts";
import { runLocal } from "./local_run.ts";
import { inspect } from "../codec/mod.ts";
import { PredictorFit } from "../codec/predict/calibrate.ts";
import { buildCoefficientSet, registerCoefficientSet } from "../codec/predict/coefficients.ts";

const shape = { requestId: "r", nLayers: 2, nKvHeads: 2, nPos: 40, headDim: 8 };

function synthetic(seed: number): { layers: PrefillKv["layers"]; prefill: PrefillKv } {
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
  return { layers, prefill: { ...shape, layers, metric } };
}

/** Evicts and encodes on the CPU; the bundles of every layer. */
async function compress(settings: KvSettings, prefill: PrefillKv) {
  return await new CompressionJob("r", settings, prefill).run(cpuFrameEncoder, () => {});
}

const kv = (over: Partial<KvSettings>): KvSettings => ({ ...defaultKvSettings(DEFAULTS.kv), ...over });
const expect = { nLayers: 2, nKvHeads: 2, headDim: 8, maxElements: 1 << 20 };

Deno.test("CompressionJob.run() with a lossless codec hands decode exactly the survivors of each head", async () => {
  const { layers, prefill } = synthetic(1);
  const out = await compress(
    kv({ codec: "zstd", evictionRate: 2, blockSize: 4, protectedWindow: 8, sink: 4 }),
    prefill,
  );
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

Deno.test("CompressionJob with kvsort and fast keeps every value within the relative bound, per head and per layer frame", async () => {
  const { layers, prefill } = synthetic(2);
  for (const [codec, frames] of [["kvsort", "head"], ["kvsort", "layer"], ["fast", "head"]] as const) {
    const out = await compress(kv({ codec, errorBound: 1e-2, errorMode: "rel", frames }), prefill);
    for (const [l, bytes] of out.encoded.entries()) {
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

Deno.test("decodeLayerBundle() turns a corrupted frame into a corrupt_bundle error, never values", async () => {
  const { prefill } = synthetic(3);
  const good = (await compress(kv({ codec: "kvsort", errorBound: 1e-3 }), prefill)).encoded[0];
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

Deno.test("CompressionJob() refuses a prefill output whose layers disagree with its shape", () => {
  const { prefill } = synthetic(4);
  const err = assertThrows(() =>
    new CompressionJob("r", kv({}), { ...prefill, layers: prefill.layers.slice(1) })
  );
  assertEquals(asKvrelayError(err).code, "internal");
});

Deno.test("CompressionJob.run() hands each layer on as it is encoded; pipeline: false gives the same bundles after all", async () => {
  const { prefill } = synthetic(5);
  const settings = kv({ codec: "fast", errorBound: 1e-2, evictionRate: 2, blockSize: 4 });
  const seen = (pipeline: boolean) => {
    const events: string[] = [];
    const emitted: LayerEncoding[] = [];
    const encoder = {
      ...cpuFrameEncoder,
      encodeFrames: (
        f: Parameters<typeof cpuFrameEncoder.encodeFrames>[0],
        o: Parameters<typeof cpuFrameEncoder.encodeFrames>[1],
      ) => {
        events.push(`encode ${f[0].layer}`);
        return cpuFrameEncoder.encodeFrames(f, o);
      },
    };
    const run = new CompressionJob("r", settings, prefill).run(encoder, (l) => {
      events.push(`emit ${l.layer}`);
      emitted.push(l);
    }, { pipeline });
    return run.then((out) => ({ out, events, emitted }));
  };
  const on = await seen(true), off = await seen(false);
  assertEquals(on.events, ["encode 0", "emit 0", "encode 1", "emit 1"]);
  assertEquals(off.events, ["encode 0", "encode 1", "emit 0", "emit 1"]);
  assertEquals(on.emitted.map((l) => l.bundle), off.emitted.map((l) => l.bundle));
  assertEquals(on.out.encoded, on.emitted.map((l) => l.bundle));
  assertEquals(on.out.stats.rawBytes, 2 * 2 * 2 * shape.nKvHeads * shape.nPos * shape.headDim); // fp16 basis
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

Deno.test("CompressionJob pools the metric with max_pool: the neighbours of a high-scoring KV survive with it", async () => {
  // Low noise everywhere, a spike at position 20 of every head, and its six neighbours at 0:
  // without pooling they are the first to go; with kernel 7 they share the spike's score.
  const spike = 20;
  const metric = new Float32Array(shape.nLayers * shape.nKvHeads * shape.nPos);
  for (let i = 0; i < metric.length; i++) {
    const p = i % shape.nPos;
    metric[i] = p === spike ? 1 : Math.abs(p - spike) <= 3 ? 0 : 0.1 + 0.01 * (p % 7);
  }
  const { prefill } = synthetic(3);
  const keptAround = async (maxPool: number) => {
    const settings = kv({
      codec: "zstd",
      evictionRate: 2,
      blockSize: 1,
      protectedWindow: 8,
      sink: 4,
      maxPool,
    });
    const out = await compress(settings, { ...prefill, metric });
    const heads = out.encoded.flatMap((b) => decodeLayerBundle(b, expect).heads);
    return heads.map((h) => [17, 18, 19, 20, 21, 22, 23].filter((p) => h.positions.includes(p)));
  };
  for (const kept of await keptAround(0)) assertEquals(kept, [20]);
  for (const kept of await keptAround(7)) assertEquals(kept, [17, 18, 19, 20, 21, 22, 23]);
});

Deno.test("CompressionJob.run() codes kvsort head frames with the model's cross-channel predictor when it has one", async () => {
  const { layers, prefill } = synthetic(5);
  // channels that follow one factor per token: the cross-channel predictor's kind of KV
  for (const l of layers) {
    for (const a of [l.keys, l.values]) {
      for (let r = 0; r < a.length / 8; r++) {
        for (let c = 1; c < 8; c++) a[r * 8 + c] = a[r * 8] * (c + 1) / 4 + 0.01 * a[r * 8 + c];
      }
    }
  }
  // coefficients for every (role, layer, head), fitted on the frames themselves
  const entries = [];
  for (const role of ["key", "value"] as const) {
    for (let l = 0; l < 2; l++) {
      for (let h = 0; h < 2; h++) {
        const fit = new PredictorFit(8);
        const src = role === "key" ? layers[l].keys : layers[l].values;
        fit.add(src.subarray(h * 40 * 8, (h + 1) * 40 * 8), 40);
        entries.push(fit.solve({ role, layer: l, head: h }));
      }
    }
  }
  const coefficients = registerCoefficientSet(buildCoefficientSet(8, entries));
  const settings = kv({ codec: "kvsort", errorBound: 1e-2 });
  const withSet = await new CompressionJob("r", settings, { ...prefill, coefficients }).run(
    cpuFrameEncoder,
    () => {},
  );
  const used = new Set<string>();
  await new CompressionJob("r", settings, { ...prefill, coefficients }).run(cpuFrameEncoder, (layer) => {
    for (const f of layer.frames) used.add(JSON.stringify(inspect(f).linear ?? { k: inspect(f).k }));
  });
  assertEquals([...used], [JSON.stringify({ kind: "cross", coefficients: coefficients.hash })]);
  for (const [l, bytes] of withSet.encoded.entries()) {
    const d = decodeLayerBundle(bytes, expect);
    for (const [h, head] of d.heads.entries()) {
      for (const [got, src] of [[head.keys, layers[l].keys], [head.values, layers[l].values]] as const) {
        const x = src.subarray(h * 40 * 8, (h + 1) * 40 * 8);
        let lo = Infinity, hi = -Infinity;
        for (const v of x) (lo = Math.min(lo, v)), (hi = Math.max(hi, v));
        for (let i = 0; i < x.length; i++) {
          assert(Math.abs(got[i] - x[i]) <= 1e-2 * (hi - lo), `l${l} h${h} ${i}`);
        }
      }
    }
  }
});

Deno.test("CompressionJob: concurrent jobs with an async two-layer encoder each gather into their own buffer, and decode gets every survivor", async () => {
  const settings = kv({ codec: "zstd", evictionRate: 2, blockSize: 4, protectedWindow: 8, sink: 4 });
  const jobs = [synthetic(11), synthetic(12)];
  const buffers: ArrayBufferLike[][] = [[], []];
  const encoderFor = (j: number) => ({
    ...cpuFrameEncoder,
    layersPerCall: 2,
    encodeFrames: async (
      f: Parameters<typeof cpuFrameEncoder.encodeFrames>[0],
      o: Parameters<typeof cpuFrameEncoder.encodeFrames>[1],
    ) => {
      buffers[j].push(...new Set(f.map((x) => x.data.buffer)));
      await new Promise((r) => setTimeout(r, 5)); // the other job runs meanwhile
      return cpuFrameEncoder.encodeFrames(f, o);
    },
  });
  const outs = await Promise.all(
    jobs.map(({ prefill }, j) => new CompressionJob("r", settings, prefill).run(encoderFor(j), () => {})),
  );
  // one gather buffer per call (every head here loses rows), and the two jobs' buffers differ
  assertEquals(buffers.map((b) => b.length), [1, 1]);
  assert(buffers[0][0] !== buffers[1][0]);
  for (const [j, out] of outs.entries()) {
    for (const [l, bytes] of out.encoded.entries()) {
      const d = decodeLayerBundle(bytes, expect);
      for (const [h, head] of d.heads.entries()) {
        assert(head.positions.length < shape.nPos);
        head.positions.forEach((p, i) => {
          const src = (h * shape.nPos + p) * 8;
          assertEquals(
            Array.from(head.keys.subarray(i * 8, i * 8 + 8)),
            Array.from(jobs[j].layers[l].keys.subarray(src, src + 8)),
          );
          assertEquals(
            Array.from(head.values.subarray(i * 8, i * 8 + 8)),
            Array.from(jobs[j].layers[l].values.subarray(src, src + 8)),
          );
        });
      }
    }
  }
});
