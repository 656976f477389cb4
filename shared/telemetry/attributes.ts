/**
 * Stable span and metric attribute names. Dashboards, alerts and the `traces` tool read
 * these strings, so renaming one is a breaking change: add a new name instead.
 *
 * | Constant            | Name                          | Type   | Meaning                                              |
 * | ------------------- | ----------------------------- | ------ | ---------------------------------------------------- |
 * | `REQUEST_ID`        | `kvrelay.request_id`          | string | gateway request id, the same on every hop           |
 * | `MODEL`             | `gen_ai.request.model`        | string | model name the client asked for                      |
 * | `LAYER`             | `kvrelay.layer`               | string | layer or layer-bundle of a KV bundle, e.g. `"0-3"`   |
 * | `STAGE`             | `kvrelay.stage`               | string | pipeline stage: prefill, evict, encode, transfer, ...|
 * | `KV_BYTES_RAW`      | `kvrelay.kv.bytes_raw`        | int    | KV bytes before compression                          |
 * | `KV_BYTES_ENCODED`  | `kvrelay.kv.bytes_encoded`    | int    | KV bytes after compression (on the wire)             |
 * | `KV_RATIO`          | `kvrelay.kv.ratio`            | double | `bytes_raw / bytes_encoded`                          |
 * | `KV_KEPT_FRACTION`  | `kvrelay.kv.kept_fraction`    | double | fraction of tokens kept by eviction, in [0, 1]       |
 * | `KV_TOKENS`         | `kvrelay.kv.tokens`           | int    | tokens (positions) in the bundle                     |
 * | `CODEC_ERROR_BOUND` | `kvrelay.codec.error_bound`   | double | absolute error bound the codec enforced              |
 * | `CODEC_INDEX_SHARE` | `kvrelay.codec.index_share`   | double | index share k of the encoded stream                  |
 * | `CODEC_NAME`        | `kvrelay.codec.name`          | string | codec id, e.g. `sz-lorenzo`, `zstd`, `none`          |
 * | `CHUNK_INDEX`       | `kvrelay.chunk.index`         | int    | page/chunk number of a transfer                      |
 * | `CHUNK_COUNT`       | `kvrelay.chunk.count`         | int    | chunks in a transfer                                 |
 * | `INPUT_TOKENS`      | `gen_ai.usage.input_tokens`   | int    | prompt tokens                                        |
 * | `OUTPUT_TOKENS`     | `gen_ai.usage.output_tokens`  | int    | generated tokens                                     |
 * | `ERROR_TYPE`        | `error.type`                  | string | `KvrelayError` code or error class name              |
 * | `NATS_SUBJECT`      | `messaging.destination.name`  | string | NATS subject of a hop                                |
 * | `MESSAGING_SYSTEM`  | `messaging.system`            | string | always `"nats"` on NATS hops                         |
 *
 * `gen_ai.*`, `error.type` and `messaging.*` follow the OpenTelemetry semantic conventions.
 * @module
 */

export const REQUEST_ID = "kvrelay.request_id";
export const MODEL = "gen_ai.request.model";
export const LAYER = "kvrelay.layer";
export const STAGE = "kvrelay.stage";
export const KV_BYTES_RAW = "kvrelay.kv.bytes_raw";
export const KV_BYTES_ENCODED = "kvrelay.kv.bytes_encoded";
export const KV_RATIO = "kvrelay.kv.ratio";
export const KV_KEPT_FRACTION = "kvrelay.kv.kept_fraction";
export const KV_TOKENS = "kvrelay.kv.tokens";
export const CODEC_ERROR_BOUND = "kvrelay.codec.error_bound";
export const CODEC_INDEX_SHARE = "kvrelay.codec.index_share";
export const CODEC_NAME = "kvrelay.codec.name";
export const CHUNK_INDEX = "kvrelay.chunk.index";
export const CHUNK_COUNT = "kvrelay.chunk.count";
export const INPUT_TOKENS = "gen_ai.usage.input_tokens";
export const OUTPUT_TOKENS = "gen_ai.usage.output_tokens";
export const ERROR_TYPE = "error.type";
export const NATS_SUBJECT = "messaging.destination.name";
export const MESSAGING_SYSTEM = "messaging.system";

/** Attribute names the `traces --show` tree prints next to a span, in this order. */
export const KEY_ATTRIBUTES: readonly string[] = [
  REQUEST_ID,
  MODEL,
  LAYER,
  KV_BYTES_RAW,
  KV_BYTES_ENCODED,
  KV_RATIO,
  CODEC_ERROR_BOUND,
  CODEC_INDEX_SHARE,
  KV_KEPT_FRACTION,
  INPUT_TOKENS,
  OUTPUT_TOKENS,
  ERROR_TYPE,
  NATS_SUBJECT,
  "http.route",
  "http.response.status_code",
];
