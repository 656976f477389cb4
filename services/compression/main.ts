import { runService } from "../run_service.ts";
import { startCompressionService } from "./service.ts";

if (import.meta.main) await runService("compression", startCompressionService);
