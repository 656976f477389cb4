/**
 * `deno task kvrelay generate --model PATH [--tokenizer PATH] (--prompt TEXT | --prompt-file F)
 *   [--max-tokens N] [--temperature T] [--top-p P] [--top-k K] [--min-p P] [--seed S] [--presence-penalty X]
 *   [--frequency-penalty X] [--repetition-penalty X] [--min-tokens N] [--stop-token-ids A,B]
 *   [--ignore-eos] [--eviction-rate R]
 *   [--max-cache-tokens N] [--eviction kvcompress|uniform|recency] [--error-bound E]
 *   [--protected-window N] [--observation-window N] [--sink N] [--head-floor N] [--max-pool K]
 *   [--codec C] [--index-share K|auto] [--canary] [--json]`
 *
 * With eviction on (`--eviction-rate` > 1 or `--max-cache-tokens`), decode keeps evicting while
 * it generates, so the budget holds for the whole generation (`kv.peak_cache_tokens`).
 * `--ignore-eos` generates `--max-tokens` tokens whatever they are; `--canary` also runs the
 * accuracy canary's shadow and reports `kv.canary`.
 *
 * Runs one prompt through the same hand-off the services use, in one process. `--json`
 * prints `{prompt_ids, ids, text, finish_reason, kv}` where `kv` is the `usage.kv` object.
 * @module
 */
import { badRequest } from "../../../shared/errors.ts";
import { defaultKvSettings, resolveKvSettings } from "../../../shared/pipeline/kv_settings.ts";
import { loadConfiguredModel } from "../../../shared/pipeline/load_model.ts";
import { runLocal } from "../../../shared/pipeline/local_run.ts";
import { parseCommon } from "../../gateway/validate.ts";
import { configFromFlags, MODEL_FLAGS, parseFlags, readPrompt } from "../model_flags.ts";

export async function run(args: string[]): Promise<number> {
  const v = parseFlags(args, {
    ...MODEL_FLAGS,
    "max-tokens": { type: "string", default: "256" },
    temperature: { type: "string", default: "0" },
    "top-p": { type: "string", default: "1" },
    "top-k": { type: "string" },
    "min-p": { type: "string" },
    seed: { type: "string" },
    "presence-penalty": { type: "string" },
    "frequency-penalty": { type: "string" },
    "repetition-penalty": { type: "string" },
    "min-tokens": { type: "string" },
    "stop-token-ids": { type: "string" },
    "ignore-eos": { type: "boolean", default: false },
    codec: { type: "string" },
    "error-bound": { type: "string" },
    "error-mode": { type: "string" },
    "index-share": { type: "string" },
    frames: { type: "string" },
    eviction: { type: "string" },
    "eviction-rate": { type: "string" },
    "max-cache-tokens": { type: "string" },
    "protected-window": { type: "string" },
    "observation-window": { type: "string" },
    "max-pool": { type: "string" },
    sink: { type: "string" },
    "head-floor": { type: "string" },
    canary: { type: "boolean", default: false },
    json: { type: "boolean", default: false },
  });
  const config = configFromFlags(v);
  const prompt = (await readPrompt(v)) ?? "";
  const num = (s: string | undefined, name: string) => {
    if (s === undefined) return undefined;
    const x = Number(s);
    if (!Number.isFinite(x)) throw badRequest(`--${name} must be a number, got '${s}'`);
    return x;
  };
  const kvInput: Record<string, unknown> = {
    codec: v.codec,
    error_bound: num(v["error-bound"], "error-bound"),
    error_mode: v["error-mode"],
    index_share: v["index-share"] === "auto" ? "auto" : num(v["index-share"], "index-share"),
    frames: v.frames,
    eviction: v.eviction,
    eviction_rate: num(v["eviction-rate"], "eviction-rate"),
    max_cache_tokens: num(v["max-cache-tokens"], "max-cache-tokens"),
    protected_window: num(v["protected-window"], "protected-window"),
    observation_window: num(v["observation-window"], "observation-window"),
    max_pool: num(v["max-pool"], "max-pool"),
    sink: num(v.sink, "sink"),
    head_floor: num(v["head-floor"], "head-floor"),
  };
  for (const k of Object.keys(kvInput)) if (kvInput[k] === undefined) delete kvInput[k];
  const kv = resolveKvSettings(defaultKvSettings(config.kv), kvInput);
  // The sampling flags mean what the API's parameters mean, and are checked by the same code.
  const sampling = parseCommon(
    {
      model: "local",
      max_tokens: num(v["max-tokens"], "max-tokens"),
      temperature: num(v.temperature, "temperature"),
      top_p: num(v["top-p"], "top-p"),
      top_k: num(v["top-k"], "top-k"),
      min_p: num(v["min-p"], "min-p"),
      seed: num(v.seed, "seed"),
      presence_penalty: num(v["presence-penalty"], "presence-penalty"),
      frequency_penalty: num(v["frequency-penalty"], "frequency-penalty"),
      repetition_penalty: num(v["repetition-penalty"], "repetition-penalty"),
      min_tokens: num(v["min-tokens"], "min-tokens"),
      stop_token_ids: v["stop-token-ids"]?.split(",").map((x) => num(x.trim(), "stop-token-ids")),
      ignore_eos: v["ignore-eos"] || undefined,
    },
    config.maxTokensLimit,
    256,
  ).sampling;
  const model = await loadConfiguredModel(config);
  try {
    const promptIds = model.tokenizer.encode(prompt);
    const r = await runLocal(model, promptIds, {
      kv,
      sampling,
      canary: v.canary,
    });
    if (v.json) {
      console.log(
        JSON.stringify({
          prompt_ids: r.promptIds,
          ids: r.ids,
          text: r.text,
          finish_reason: r.finishReason,
          kv: r.kv,
        }),
      );
    } else {
      console.log(prompt + r.text);
      console.error(
        `\n[kv] ${r.kv.codec} ratio ${r.kv.ratio}x (${r.kv.raw_bytes} → ${r.kv.wire_bytes} B), kept ${r.kv.kept_fraction}, ` +
          `peak ${r.kv.peak_cache_tokens} KVs a head, ${r.kv.peak_blocks} blocks` +
          (r.kv.canary ? `; canary top-1 ${r.kv.canary.top1_agreement}, KL ${r.kv.canary.mean_kl}` : ""),
      );
    }
    return 0;
  } finally {
    await model.close();
  }
}
