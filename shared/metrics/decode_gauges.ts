/**
 * What a decode instance reports about its load, read at scrape time: sequences generating and
 * waiting for their KV, and its block store's use. Every gauge carries the instance's id as
 * `decode_instance` (not `instance`, which Prometheus sets to the scraped target).
 * @module
 */
import { Gauge, type Registry } from "prom-client";
import type { BlockStoreStats } from "../blockstore/mod.ts";

/** One reading of a decode instance's load. */
export interface DecodeLoad {
  /** Sequences in the batched decode loop. */
  running: number;
  /** Requests opened here whose KV has not been committed yet. */
  waiting: number;
  store: BlockStoreStats;
}

/**
 * Registers the decode gauges on `registry`; each scrape calls `read` once.
 *
 * @example
 * ```ts
 * registerDecodeGauges(registry, instance, () => ({
 *   running: engine.activeCount, waiting: 0, store: store.stats(),
 * }));
 * ```
 */
export function registerDecodeGauges(registry: Registry, instance: string, read: () => DecodeLoad): void {
  const labels = { decode_instance: instance };
  const gauge = (name: string, help: string, value: (l: DecodeLoad) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ["decode_instance"] as const,
      registers: [registry],
      collect() {
        this.set(labels, value(read()));
      },
    });
  gauge("kvrelay_running_sequences", "Sequences generating in the decode loop", (l) => l.running);
  gauge(
    "kvrelay_waiting_sequences",
    "Requests opened on the decode instance whose KV hand-off has not committed yet",
    (l) => l.waiting,
  );
  gauge(
    "kvrelay_blockstore_used_blocks",
    "Blocks of the decode block store in use",
    (l) => l.store.usedBlocks,
  );
  gauge(
    "kvrelay_blockstore_capacity_blocks",
    "Blocks of the decode block store in all",
    (l) => l.store.usedBlocks + l.store.freeBlocks,
  );
  gauge("kvrelay_blockstore_used_bytes", "Bytes of the decode block store in use", (l) => l.store.bytesUsed);
  gauge(
    "kvrelay_blockstore_capacity_bytes",
    "Bytes of the decode block store in all",
    (l) => l.store.bytesCapacity,
  );
}
