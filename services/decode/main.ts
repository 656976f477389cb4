import { runService } from "../run_service.ts";
import { describeModel, loadConfiguredModel } from "../../shared/pipeline/load_model.ts";
import { startDecodeService } from "./service.ts";

if (import.meta.main) {
  await runService("decode", async (nc, config) => {
    const model = await loadConfiguredModel(config); // one prefill graph: it serves only the canary
    console.error(`[decode] ${describeModel(model)}`);
    const d = await startDecodeService(nc, model, config);
    return { stop: async () => (await d.service.stop(), await model.close()) };
  });
}
