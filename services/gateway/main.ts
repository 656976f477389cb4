import { loadConfig, warnUnknownVariables } from "../../shared/config/mod.ts";
import { startOrExit } from "../../shared/config/startup.ts";
import { connectNats } from "../../shared/nats/mod.ts";
import { installShutdown, onShutdown } from "../../shared/telemetry/mod.ts";
import { defaultKvSettings } from "../../shared/pipeline/kv_settings.ts";
import { createApp } from "./app.ts";
import { NatsBackend } from "./nats_backend.ts";
import { ServiceReports } from "../../shared/metrics/mod.ts";
import { GatewayMetrics } from "./metrics/mod.ts";

if (import.meta.main) {
  const config = await startOrExit("gateway", loadConfig);
  warnUnknownVariables("gateway");
  installShutdown({ onSignal: (s) => console.error(`[gateway] ${s}: stopping`) });
  const nc = await startOrExit(
    "gateway",
    () => connectNats(config.natsUrl, "kvrelay-gateway", config.natsAuth),
  );
  onShutdown(() => nc.drain());
  const backend = new NatsBackend(nc, config);
  const kvDefaults = defaultKvSettings(config.kv);
  const metrics = new GatewayMetrics();
  const app = createApp({
    backend,
    kvDefaults,
    maxTokensLimit: config.maxTokensLimit,
    maxBodyBytes: config.maxBodyBytes,
    apiKeys: config.apiKeys,
    maxInflight: config.maxInflight,
    sseKeepAliveMs: config.sseKeepAliveMs,
    observability: {
      metrics,
      reports: new ServiceReports(nc, ["prefill", "decode"], metrics.registry),
      traceReceiver: config.traceReceiver,
    },
    batch: {
      nc,
      backend,
      kvDefaults,
      storeOptions: { fileTtlMs: config.fileTtlS * 1000, uploadQuotaBytes: config.uploadQuotaBytes },
    },
  });
  const server = Deno.serve({
    hostname: config.host,
    port: config.port,
    onListen: ({ hostname, port }) => console.error(`[gateway] listening on http://${hostname}:${port}`),
  }, app.fetch);
  onShutdown(() => server.shutdown());
}
