import type { Config } from "../config/mod.ts";
import { KvrelayError } from "../errors.ts";
import { Model } from "../model/mod.ts";

/**
 * Loads the model the configuration names on the configured device (KVRELAY_DEVICE); no
 * model configured is a clear error. Prefill is one graph unless `prefillGroups` says otherwise:
 * only the prefill node, whose hand-off starts with the first group, passes KVRELAY_PREFILL_GROUPS.
 */
export async function loadConfiguredModel(
  config: Config,
  opts: { prefillGroups?: number | "auto" } = {},
): Promise<Model> {
  if (!config.modelPath) {
    throw new KvrelayError(
      "bad_request",
      "no model configured: pass --model PATH (and --tokenizer for a llama2.c .bin) or set KVRELAY_MODEL / KVRELAY_TOKENIZER",
    );
  }
  return await Model.load({
    modelPath: config.modelPath,
    tokenizerPath: config.tokenizerPath,
    threads: config.threads,
    device: config.device,
    prefillGroups: opts.prefillGroups ?? 1,
  });
}

/** One line for a service's log: the model and where it runs. */
export function describeModel(model: Model): string {
  const on = model.device === "webgpu" ? `webgpu (${model.adapter ?? "adapter unknown"})` : "cpu";
  return `model ${model.config.name} on ${on}${model.keepsKv ? ", KV kept on the device between steps" : ""}`;
}
