import { runService } from "../run_service.ts";
import { describeModel, loadConfiguredModel } from "../../shared/pipeline/load_model.ts";
import { startPrefillService } from "./service.ts";

if (import.meta.main) {
  await runService("prefill", async (nc, config) => {
    const model = await loadConfiguredModel(config);
    console.error(`[prefill] ${describeModel(model)}`);
    const svc = await startPrefillService(nc, model, config);
    return { stop: async () => (await svc.stop(), await model.close()) };
  });
}
