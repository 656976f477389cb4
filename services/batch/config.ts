/**
 * The batch worker's own settings, read once from the environment; a bad value throws at
 * start-up. The shared settings (NATS URL, KV defaults, token limits) come from
 * `shared/config`.
 * @module
 */
import { DEFAULTS } from "../../shared/config/mod.ts";
import { badRequest } from "../../shared/errors.ts";

/**
 * The worker's exit status when the NATS server has no JetStream (EX_CONFIG of sysexits.h): a
 * setting to fix, not a crash; the launcher leaves batch jobs off and runs everything else.
 */
export const EXIT_NO_JETSTREAM = 78;

export interface BatchWorkerConfig {
  concurrency: number;
  ackWaitMs: number;
  backend: "nats" | "echo";
  echoDelayMs: number;
}

/** Reads the worker's own settings; throws at start-up on a bad value. */
export function loadBatchWorkerConfig(
  env: Record<string, string | undefined> = Deno.env.toObject(),
): BatchWorkerConfig {
  const int = (key: string, fallback: number, min: number) => {
    const raw = env[key];
    if (raw === undefined || raw === "") return fallback;
    const v = Number(raw);
    if (!Number.isInteger(v) || v < min) throw badRequest(`${key} must be an integer >= ${min}`, key);
    return v;
  };
  const backend = env.KVRELAY_BATCH_BACKEND || "nats";
  if (backend !== "nats" && backend !== "echo") {
    throw badRequest("KVRELAY_BATCH_BACKEND must be nats or echo", "KVRELAY_BATCH_BACKEND");
  }
  return {
    concurrency: int("KVRELAY_BATCH_CONCURRENCY", DEFAULTS.batchConcurrency, 1),
    ackWaitMs: int("KVRELAY_BATCH_ACK_WAIT_MS", DEFAULTS.batchAckWaitMs, 100),
    backend,
    echoDelayMs: int("KVRELAY_ECHO_DELAY_MS", 0, 0),
  } satisfies BatchWorkerConfig;
}
