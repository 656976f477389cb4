import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/nats-core";
import { KvrelayError } from "../errors.ts";
import { authOptions, type NatsAuth, natsAuthFromEnv } from "./auth.ts";
import { inboxPrefix } from "./permissions.ts";

/**
 * Connects with a name that shows in server monitoring and the credentials of `auth` (default:
 * the `NATS_*` settings of the environment, see auth.ts). Replies come to `_INBOX.<name>`,
 * the inbox prefix the role's permissions allow. A refused connection is `unavailable`.
 */
export async function connectNats(url: string, name: string, auth?: NatsAuth): Promise<NatsConnection> {
  try {
    const creds = await authOptions(auth ?? natsAuthFromEnv(Deno.env.toObject()));
    return await connect({
      servers: url,
      name,
      inboxPrefix: inboxPrefix(name),
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      ...creds,
    });
  } catch (cause) {
    if (cause instanceof KvrelayError) throw cause;
    throw new KvrelayError("unavailable", `cannot connect to NATS at ${url}: ${(cause as Error).message}`, {
      cause,
    });
  }
}
