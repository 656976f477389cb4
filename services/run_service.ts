/**
 * What every service's main does: read config once, pin the process to its GPU (KVRELAY_GPU),
 * connect to NATS, start, and stop cleanly on SIGTERM/SIGINT (draining NATS, so spans and
 * replies in flight are flushed). A
 * setting that keeps it from starting (a bad `KVRELAY_*` value, a missing model, NATS out of
 * reach) is one line and exit 1 (shared/config/startup.ts).
 * @module
 */
import type { NatsConnection } from "@nats-io/nats-core";
import { type Config, loadConfig, warnUnknownVariables } from "../shared/config/mod.ts";
import { checkModelFiles, startOrExit } from "../shared/config/startup.ts";
import { connectNats } from "../shared/nats/mod.ts";
import { selectGpu } from "../shared/webgpu/gpu_select/select.ts";
import { installShutdown, onShutdown } from "../shared/telemetry/mod.ts";

export async function runService(
  name: string,
  start: (nc: NatsConnection, config: Config) => Promise<{ stop(): Promise<unknown> | unknown }>,
): Promise<void> {
  const config = await startOrExit(name, () => {
    const c = loadConfig();
    checkModelFiles(c);
    selectGpu(c.gpu); // before anything touches a GPU
    return c;
  });
  warnUnknownVariables(name);
  installShutdown({ onSignal: (s) => console.error(`[${name}] ${s}: stopping`) });
  const nc = await startOrExit(name, () => connectNats(config.natsUrl, `kvrelay-${name}`));
  onShutdown(() => nc.drain());
  const svc = await startOrExit(name, () => start(nc, config));
  onShutdown(() => svc.stop());
  console.error(`[${name}] ready on ${config.natsUrl}`);
}
