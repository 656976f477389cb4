/**
 * Histogram bucket bounds of kvrelay's Prometheus metrics, one list per quantity. Times are in
 * milliseconds (the metric names say `_ms`), ratios and fractions are unitless.
 * @module
 */

/** Compression ratio against fp16: 1 (no gain) to 64. */
export const RATIO_BUCKETS = [1, 1.5, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64];
/** Kept KVs / prompt KVs: an eviction rate r keeps about 1/r. */
export const KEPT_FRACTION_BUCKETS = [0.0625, 0.125, 0.25, 0.5, 0.75, 0.9, 0.99, 1];
/** One request's whole hand-off, end of prefill to KV ready at decode. */
export const HANDOFF_MS_BUCKETS = [1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];
/** One request's encode time, summed over its layers. */
export const ENCODE_MS_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000];
/** Time to first token, as the client sees it. */
export const TTFT_MS_BUCKETS = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000];
/** Time per output token after the first. */
export const TPOT_MS_BUCKETS = [0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000];
