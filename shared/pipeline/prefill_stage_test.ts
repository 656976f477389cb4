/**
 * startPrefill: with a model run in layer groups, the KV is handed out and compression starts
 * on the first layers before prefill has computed the last; eviction, which ranks every layer,
 * waits for all of them; a prefill that fails mid-way fails the compression that waits on it.
 */
import { assert, assertEquals, assertRejects } from "@std/assert";
import { EMBEDDED_MODEL_DIR } from "../config/mod.ts";
import { Model } from "../model/mod.ts";
import type { PrefillOptions as ModelPrefillOptions } from "../model/model.ts";
import { CompressionJob, cpuFrameEncoder } from "./compress_stage.ts";
import { defaultKvSettings } from "./kv_settings.ts";
import { loadConfig } from "../config/mod.ts";
import { runPrefill, startPrefill } from "./prefill_stage.ts";
import { KvrelayError } from "../errors.ts";
import type { SamplingParams } from "../handoff/contract.ts";

const model = await Model.load({ modelPath: EMBEDDED_MODEL_DIR, prefillGroups: "auto" });
const L = model.config.nLayers;
const IDS = model.tokenizer.encode(
  "The river ran past the old mill, where a girl named Mia kept a small boat. ".repeat(8),
);
const GREEDY: SamplingParams = { temperature: 0, topP: 1, maxTokens: 1 };
const base = defaultKvSettings(loadConfig({}).kv);

Deno.test("auto gives a layer group a layer on the CPU", () => {
  assertEquals(model.prefillGroups, L);
});

Deno.test("startPrefill hands out the KV, and compression encodes early layers, before prefill ends", async () => {
  const kv = { ...base, codec: "fp16" as const, evictionRate: 1 };
  const started = startPrefill(model, IDS, { kv, sampling: GREEDY, rng: Math.random });
  let ended = false;
  const ending = started.ending.then((e) => (ended = true, e));
  const prefill = await started.kv;
  const emittedBeforeEnd: number[] = [];
  const out = await new CompressionJob("r1", kv, prefill).run(cpuFrameEncoder, (layer) => {
    if (!ended) emittedBeforeEnd.push(layer.layer);
  });
  const end = await ending;
  assert(
    emittedBeforeEnd.length > 0 && emittedBeforeEnd[0] === 0,
    `emitted before the end: ${emittedBeforeEnd}`,
  );
  assertEquals(out.encoded.length, L);
  // the same bundles as when compression waits for the whole prefill
  const whole = await runPrefill(model, IDS, { kv, sampling: GREEDY, rng: Math.random });
  assertEquals(end.firstToken, whole.firstToken);
  const again = await new CompressionJob("r1", kv, whole.kv).run(cpuFrameEncoder, () => {});
  assertEquals(out.encoded, again.encoded);
});

Deno.test("with eviction, compression waits for every layer before it plans", async () => {
  const kv = { ...base, codec: "fp16" as const, evictionRate: 4 };
  const started = startPrefill(model, IDS, { kv, sampling: GREEDY, rng: Math.random });
  let ended = false;
  const ending = started.ending.then(() => ended = true);
  const out = await new CompressionJob("r2", kv, await started.kv).run(cpuFrameEncoder, () => {
    assert(ended, "a layer was emitted before prefill ended");
  });
  await ending;
  assert(out.stats.keptFraction < 1);
});

Deno.test("a prefill that fails after its first group fails the compression waiting on it", async () => {
  const failing = Object.create(model) as Model;
  const boom = new KvrelayError("model_error", "the second group failed");
  failing.prefill = async (_ids: number[], opts: ModelPrefillOptions = {}) => {
    const first = await model.prefill(IDS);
    opts.onLayers?.(1, { layers: first.layers.slice(0, 1).concat(new Array(L - 1)), metric: first.metric });
    await new Promise((r) => setTimeout(r, 10));
    throw boom;
  };
  const kv = { ...base, codec: "fp16" as const, evictionRate: 1 };
  const started = startPrefill(failing, IDS, { kv, sampling: GREEDY, rng: Math.random });
  const emitted: number[] = [];
  const job = new CompressionJob("r3", kv, await started.kv).run(
    cpuFrameEncoder,
    (l) => void emitted.push(l.layer),
  );
  assertEquals(await assertRejects(() => job), boom);
  assertEquals(await assertRejects(() => started.ending), boom);
  assertEquals(emitted, [0]);
});

Deno.test("a prefill that fails before its first group fails the KV too", async () => {
  const failing = Object.create(model) as Model;
  failing.prefill = () => Promise.reject(new KvrelayError("bad_request", "prompt is empty"));
  const started = startPrefill(failing, IDS, {
    kv: { ...base, codec: "fp16" as const },
    sampling: GREEDY,
    rng: Math.random,
  });
  await assertRejects(() => started.kv, KvrelayError, "prompt is empty");
  await assertRejects(() => started.ending, KvrelayError, "prompt is empty");
});

Deno.test("runPrefill of a prompt prefill refuses rejects with its typed error and leaves no unhandled rejection", async () => {
  const one = await Model.load({ modelPath: EMBEDDED_MODEL_DIR, prefillGroups: 1 });
  try {
    await assertRejects(
      () => runPrefill(one, [], { kv: base, sampling: GREEDY, rng: Math.random }),
      KvrelayError,
      "prompt is empty",
    );
    await new Promise((r) => setTimeout(r, 20)); // the turn an unhandled rejection would surface in
  } finally {
    await one.close();
  }
});

Deno.test({
  name: "(closes the model)",
  fn: () => model.close(),
  sanitizeResources: false,
  sanitizeOps: false,
});
