import { runService } from "../run_service.ts";
import { describeModel, loadConfiguredModel } from "../../shared/pipeline/load_model.ts";
import { startPrefillNode } from "./service.ts";

if (import.meta.main) {
  await runService("prefill", async (nc, config) => {
    const model = await loadConfiguredModel(config, { prefillGroups: config.prefillGroups });
    console.error(`[prefill] ${describeModel(model)}`);
    const node = await startPrefillNode(nc, model, config);
    return { stop: async () => (await node.stop(), await model.close()) };
  });
}
