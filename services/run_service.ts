/**
 * What every service's main does: read config once, connect to NATS, start, and stop
 * cleanly on SIGTERM/SIGINT (draining NATS, so spans and replies in flight are flushed).
 * @module
 */
import type { NatsConnection } from "@nats-io/nats-core";
import { type Config, loadConfig } from "../shared/config/mod.ts";
import { connectNats } from "../shared/nats/mod.ts";
import { installShutdown, onShutdown } from "../shared/telemetry/mod.ts";

export async function runService(
  name: string,
  start: (nc: NatsConnection, config: Config) => Promise<{ stop(): Promise<unknown> | unknown }>,
): Promise<void> {
  const config = loadConfig();
  installShutdown({ onSignal: (s) => console.error(`[${name}] ${s}: stopping`) });
  const nc = await connectNats(config.natsUrl, `kvrelay-${name}`);
  onShutdown(() => nc.drain());
  const svc = await start(nc, config);
  onShutdown(() => svc.stop());
  console.error(`[${name}] ready on ${config.natsUrl}`);
}
