/**
 * What the prefill node counts about each hand-off it runs, from the request's `usage.kv`:
 * the compression ratio, the kept fraction, encode and hand-off time (histograms), and the KV
 * bytes raw (fp16 basis) and on the wire (counters). Recorded where the hand-off runs, so
 * completions of every front end (HTTP and batch) are counted once.
 * @module
 */
import { Counter, Histogram, type Registry } from "prom-client";
import type { KvUsage } from "../handoff/contract.ts";
import { ENCODE_MS_BUCKETS, HANDOFF_MS_BUCKETS, KEPT_FRACTION_BUCKETS, RATIO_BUCKETS } from "./buckets.ts";

/** Labels of every hand-off metric: the codec, a handful of values. */
type KvLabels = "codec";

/**
 * The hand-off instruments of one registry.
 *
 * @example
 * ```ts
 * const registry = new Registry();
 * const kv = new KvMetrics(registry);
 * kv.observe(reply.kv); // after each hand-off
 * ```
 */
export class KvMetrics {
  readonly ratio: Histogram<KvLabels>;
  readonly keptFraction: Histogram<KvLabels>;
  readonly handoffMs: Histogram<KvLabels>;
  readonly encodeMs: Histogram<KvLabels>;
  readonly rawBytes: Counter<KvLabels>;
  readonly wireBytes: Counter<KvLabels>;

  constructor(registry: Registry) {
    const registers = [registry];
    const labelNames = ["codec"] as const;
    this.ratio = new Histogram({
      name: "kvrelay_kv_ratio",
      help: "KV compression ratio of one request: fp16 bytes of the prompt's KV / bytes sent on the wire",
      buckets: RATIO_BUCKETS,
      labelNames,
      registers,
    });
    this.keptFraction = new Histogram({
      name: "kvrelay_kept_fraction",
      help: "Fraction of the prompt's KVs kept by eviction, over all layers and heads (1 = no eviction)",
      buckets: KEPT_FRACTION_BUCKETS,
      labelNames,
      registers,
    });
    this.handoffMs = new Histogram({
      name: "kvrelay_handoff_ms",
      help: "Hand-off time of one request in milliseconds: end of prefill to the KV ready at decode " +
        "(evict, encode, send and decode overlapped)",
      buckets: HANDOFF_MS_BUCKETS,
      labelNames,
      registers,
    });
    this.encodeMs = new Histogram({
      name: "kvrelay_encode_ms",
      help: "Encode time of one request's KV in milliseconds, summed over its layers",
      buckets: ENCODE_MS_BUCKETS,
      labelNames,
      registers,
    });
    this.rawBytes = new Counter({
      name: "kvrelay_kv_raw_bytes_total",
      help: "Bytes of the prompts' KV caches as fp16 (2 bytes a value), what an uncompressed hand-off moves",
      labelNames,
      registers,
    });
    this.wireBytes = new Counter({
      name: "kvrelay_kv_wire_bytes_total",
      help: "Bytes of the encoded KV bundles sent from prefill to decode",
      labelNames,
      registers,
    });
  }

  /** Counts one finished hand-off. */
  observe(kv: KvUsage): void {
    const labels = { codec: kv.codec };
    this.ratio.observe(labels, kv.ratio);
    this.keptFraction.observe(labels, kv.kept_fraction);
    this.handoffMs.observe(labels, kv.ms.handoff);
    this.encodeMs.observe(labels, kv.ms.encode);
    this.rawBytes.inc(labels, kv.raw_bytes);
    this.wireBytes.inc(labels, kv.wire_bytes);
  }
}
