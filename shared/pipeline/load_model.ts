import type { Config } from "../config/mod.ts";
import { KvrelayError } from "../errors.ts";
import { Model } from "../model/mod.ts";

/** Loads the model the configuration names; no model configured is a clear error. */
export async function loadConfiguredModel(config: Config): Promise<Model> {
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
  });
}
