/**
 * The batch worker service: runs batch lines from JetStream through the cluster (the same
 * `NatsBackend` the gateway uses), or through the echo backend when
 * `KVRELAY_BATCH_BACKEND=echo` (tests, demos without a model).
 *
 * Environment, besides the shared config: `KVRELAY_BATCH_CONCURRENCY` (lines at once, 4),
 * `KVRELAY_BATCH_ACK_WAIT_MS` (redelivery after a dead worker, 30000),
 * `KVRELAY_BATCH_BACKEND` (`nats` or `echo`), `KVRELAY_ECHO_DELAY_MS`.
 *
 * A NATS server without JetStream is a setting, not a crash: the worker says so and exits with
 * `EXIT_NO_JETSTREAM`, which the launcher does not restart.
 * @module
 */
import type { NatsConnection } from "@nats-io/nats-core";
import type { Config } from "../../shared/config/mod.ts";
import { BatchStore, JetStreamMissing } from "../../shared/batch/mod.ts";
import { defaultKvSettings } from "../../shared/pipeline/kv_settings.ts";
import type { Backend } from "../gateway/backend.ts";
import { NatsBackend } from "../gateway/nats_backend.ts";
import { runService } from "../run_service.ts";
import { EchoBackend } from "./echo_backend.ts";
import { BatchWorker } from "./worker.ts";
import { EXIT_NO_JETSTREAM, loadBatchWorkerConfig } from "./config.ts";

async function start(nc: NatsConnection, config: Config) {
  const wc = loadBatchWorkerConfig();
  const backend: Backend = wc.backend === "echo"
    ? new EchoBackend({ delayMs: wc.echoDelayMs })
    : new NatsBackend(nc, config);
  let store: BatchStore;
  try {
    store = await BatchStore.open(nc, { ackWaitMs: wc.ackWaitMs, fileTtlMs: config.fileTtlS * 1000 });
  } catch (err) {
    if (!(err instanceof JetStreamMissing)) throw err;
    // Not a crash to retry: nothing changes until the server does.
    console.error(`[batch] ${err.message}`);
    await nc.close();
    Deno.exit(EXIT_NO_JETSTREAM);
  }
  const worker = new BatchWorker({
    store,
    backend,
    kvDefaults: defaultKvSettings(config.kv),
    concurrency: wc.concurrency,
    maxTokensLimit: config.maxTokensLimit,
    log: (m) => console.error(`[batch] ${m}`),
  }).start();
  return {
    stop: async () => {
      await worker.stop();
      console.error(`[batch] stopped: ${JSON.stringify(worker.stats)}`);
    },
  };
}

if (import.meta.main) await runService("batch", start);
