import { runService } from "../run_service.ts";
import { loadConfiguredModel } from "../../shared/pipeline/load_model.ts";
import { startPrefillService } from "./service.ts";

if (import.meta.main) {
  await runService("prefill", async (nc, config) => {
    const model = await loadConfiguredModel(config);
    const svc = await startPrefillService(nc, model, config);
    return { stop: async () => (await svc.stop(), await model.close()) };
  });
}
