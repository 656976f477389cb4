/**
 * One table of what each codec is: its wire id, whether it is exact, whether an error bound
 * applies, its family, and whether the WebGPU backend runs it. Every other list of codecs in
 * the project (config, request validation, the CLI, spans) is read from here.
 * @module
 */

/** Codecs the container knows. */
export type CodecName =
  | "kvsort"
  | "sz"
  | "fast"
  | "fp16"
  | "fp16_zstd"
  | "zstd"
  | "raw"
  | "kivi8"
  | "kivi4"
  | "kivi2";

export interface CodecTraits {
  /** Wire id in the container header (never renumber: golden streams depend on them). */
  id: number;
  /** Decodes to exactly the input bits. */
  lossless: boolean;
  /** `errorBound` and `mode` apply, and every finite value is kept within the bound. */
  bounded: boolean;
  /** `index_share` applies: rows share a sort index (kvsort). */
  sortIndex: boolean;
  /** `max-ratio`: SZ-style with Huffman + zstd; `fast`: fixed-length blocks; `baseline`: for comparison. */
  family: "max-ratio" | "fast" | "baseline";
  /** The WebGPU codec backend encodes it (the others always run on the CPU). */
  gpu: boolean;
  /**
   * What the container's crc32 covers: the reconstructed `values` (checked after decoding),
   * or the `body` (checked before; the fast codecs skip rebuilding the values at encode).
   */
  digest: "values" | "body";
  /** One line for help texts. */
  summary: string;
}

export const CODEC_TRAITS: Readonly<Record<CodecName, CodecTraits>> = {
  kvsort: {
    id: 3,
    lossless: false,
    bounded: true,
    sortIndex: true,
    digest: "values",
    family: "max-ratio",
    gpu: true,
    summary:
      "KVSort: per frame the cheapest of a shared sort index, token-axis or cross-channel prediction; Huffman + zstd (highest ratio)",
  },
  sz: {
    id: 4,
    lossless: false,
    bounded: true,
    sortIndex: false,
    digest: "values",
    family: "max-ratio",
    gpu: true,
    summary: "SZ-style without the sort",
  },
  fast: {
    id: 8,
    lossless: false,
    bounded: true,
    sortIndex: false,
    digest: "body",
    family: "fast",
    gpu: true,
    summary: "blockwise prequantization, fixed-length codes, outliers apart (fastest bounded)",
  },
  fp16: {
    id: 9,
    lossless: false,
    bounded: false,
    sortIndex: false,
    digest: "body",
    family: "baseline",
    gpu: false,
    summary: "the KV cast to fp16 and nothing else: the hand-off baseline",
  },
  fp16_zstd: {
    id: 10,
    lossless: false,
    bounded: false,
    sortIndex: false,
    digest: "body",
    family: "baseline",
    gpu: false,
    summary: "the fp16 cast, then zstd -3: the general-purpose compressor's hand-off",
  },
  zstd: {
    id: 2,
    lossless: true,
    bounded: false,
    sortIndex: false,
    digest: "values",
    family: "baseline",
    gpu: false,
    summary: "zstd on the values",
  },
  raw: {
    id: 1,
    lossless: true,
    bounded: false,
    sortIndex: false,
    digest: "values",
    family: "baseline",
    gpu: false,
    summary: "the values as they are",
  },
  kivi8: {
    id: 5,
    lossless: false,
    bounded: false,
    sortIndex: false,
    digest: "values",
    family: "baseline",
    gpu: false,
    summary: "KIVI 8-bit",
  },
  kivi4: {
    id: 6,
    lossless: false,
    bounded: false,
    sortIndex: false,
    digest: "values",
    family: "baseline",
    gpu: false,
    summary: "KIVI 4-bit",
  },
  kivi2: {
    id: 7,
    lossless: false,
    bounded: false,
    sortIndex: false,
    digest: "values",
    family: "baseline",
    gpu: false,
    summary: "KIVI 2-bit",
  },
};

/** Names of every codec, in the table's order. */
export const CODECS: readonly CodecName[] = Object.keys(CODEC_TRAITS) as CodecName[];

/** Wire ids of the codecs. */
export const CODEC_IDS: Readonly<Record<CodecName, number>> = Object.fromEntries(
  CODECS.map((c) => [c, CODEC_TRAITS[c].id]),
) as Record<CodecName, number>;

/** Whether `name` is a codec of the table. */
export function isCodecName(name: unknown): name is CodecName {
  return typeof name === "string" && Object.hasOwn(CODEC_TRAITS, name);
}
