/**
 * A hand-off that started on prefill's first layer group, whose prefill then fails.
 * The request must fail with prefill's typed error, and the `transfer` span it opened must end.
 */
import { assert, assertEquals, assertRejects } from "@std/assert";
import { context, type Span, trace, type Tracer } from "@opentelemetry/api";
import type { NatsConnection } from "@nats-io/nats-core";
import { EMBEDDED_MODEL_DIR, loadConfig } from "../../shared/config/mod.ts";
import { Model } from "../../shared/model/mod.ts";
import type { PrefillOptions as ModelPrefillOptions } from "../../shared/model/model.ts";
import { startPrefill } from "../../shared/pipeline/prefill_stage.ts";
import { cpuFrameEncoder } from "../../shared/pipeline/compress_stage.ts";
import { defaultKvSettings } from "../../shared/pipeline/kv_settings.ts";
import { KvrelayError } from "../../shared/errors.ts";
import { HandOff } from "./handoff.ts";

// --- a tracer that records which spans were started and which ended
const spans: { name: string; ended: boolean }[] = [];
function fakeSpan(name: string): Span {
  const rec = { name, ended: false };
  spans.push(rec);
  const s: Record<string, unknown> = {
    spanContext: () => ({ traceId: "0".repeat(31) + "1", spanId: "0".repeat(15) + "1", traceFlags: 1 }),
    setAttribute: () => s,
    setAttributes: () => s,
    addEvent: () => s,
    addLink: () => s,
    addLinks: () => s,
    setStatus: () => s,
    updateName: () => s,
    recordException: () => {},
    isRecording: () => false,
    end: () => void (rec.ended = true),
  };
  return s as unknown as Span;
}
const tracer = {
  startSpan: (name: string) => fakeSpan(name),
  // deno-lint-ignore no-explicit-any
  startActiveSpan: (name: string, ...rest: any[]) => {
    const fn = rest.at(-1);
    const span = fakeSpan(name);
    return context.with(trace.setSpan(context.active(), span), () => fn(span));
  },
} as unknown as Tracer;
trace.setGlobalTracerProvider({ getTracer: () => tracer });

// --- a NATS connection whose every request is acknowledged
const nc = {
  info: { max_payload: 1 << 20 },
  request: () => Promise.resolve({ data: new TextEncoder().encode("{}"), headers: undefined }),
} as unknown as NatsConnection;

Deno.test({
  name: "a prefill failing after its first group: the hand-off fails with it and ends its transfer span",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const model = await Model.load({ modelPath: EMBEDDED_MODEL_DIR, prefillGroups: "auto" });
    const L = model.config.nLayers;
    const ids = model.tokenizer.encode("The river ran past the old mill. ".repeat(8));
    const boom = new KvrelayError("model_error", "the second group failed");
    const failing = Object.create(model) as Model;
    failing.prefill = async (_ids: number[], opts: ModelPrefillOptions = {}) => {
      const first = await model.prefill(ids);
      opts.onLayers?.(1, { layers: first.layers.slice(0, 1).concat(new Array(L - 1)), metric: first.metric });
      await new Promise((r) => setTimeout(r, 20));
      throw boom;
    };
    try {
      const kvSettings = { ...defaultKvSettings(loadConfig({}).kv), codec: "fp16" as const, evictionRate: 1 };
      const started = startPrefill(failing, ids, {
        kv: kvSettings,
        sampling: { temperature: 0, topP: 1, maxTokens: 1 },
        rng: Math.random,
      });
      const handOff = started.kv.then((kv) =>
        new HandOff({ nc, encoder: cpuFrameEncoder, pipeline: true }, {
          requestId: "r1",
          kv: kvSettings,
          decodeIngest: "kvrelay.ingest.decode.x",
          prefill: started.ending,
          timeoutMs: 5_000,
        }, kv).run()
      );
      const err = await assertRejects(() => Promise.all([started.ending, handOff]));
      assertEquals(err, boom);
      await assertRejects(() => handOff);
      await new Promise((r) => setTimeout(r, 50));
      const transfer = spans.filter((s) => s.name === "transfer");
      assertEquals(transfer.length, 1, "the first layer went out: one transfer span");
      assert(spans.find((s) => s.name === "handoff")!.ended, "handoff span ended");
      assert(transfer[0].ended, "the transfer span ends with the failed hand-off");
    } finally {
      await model.close();
    }
  },
});
