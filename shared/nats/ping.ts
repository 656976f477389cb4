import type { NatsConnection } from "@nats-io/nats-core";

/** True when at least one instance of the named service answers `$SRV.PING.<name>` in time. */
export async function pingService(nc: NatsConnection, name: string, timeoutMs = 1000): Promise<boolean> {
  try {
    await nc.request(`$SRV.PING.${name}`, new Uint8Array(0), { timeout: timeoutMs });
    return true;
  } catch {
    return false;
  }
}
