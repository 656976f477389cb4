import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/nats-core";
import { KvrelayError } from "../errors.ts";

/** Connects with a name that shows in server monitoring; a refused connection is `unavailable`. */
export async function connectNats(url: string, name: string): Promise<NatsConnection> {
  try {
    return await connect({ servers: url, name, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
  } catch (cause) {
    throw new KvrelayError("unavailable", `cannot connect to NATS at ${url}: ${(cause as Error).message}`, {
      cause,
    });
  }
}
