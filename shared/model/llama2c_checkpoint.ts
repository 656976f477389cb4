/**
 * Reads a llama2.c legacy checkpoint (`run.c` format): seven int32 header fields (dim,
 * hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len; a negative vocab_size
 * means an unshared classifier), then fp32 weights: token embedding, attention RMSNorm,
 * wq, wk, wv, wo, FFN RMSNorm, w1, w2, w3, final RMSNorm, two legacy RoPE tables of
 * seq_len*head_dim/2 floats each, and the classifier when unshared. wq/wk rows are permuted
 * from llama2.c's interleaved RoPE pairs to the runtime's rotate-half layout.
 * @module
 */
import { KvrelayError } from "../errors.ts";
import { type ModelConfig, validateConfig } from "./config.ts";
import { interleavedToRotateHalf } from "./rope.ts";
import type { LayerWeights, LlamaWeights } from "./weights.ts";

const HEADER_BYTES = 28;

/** A checkpoint whose header or size does not describe a valid model. */
export class CheckpointFormatError extends KvrelayError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("bad_request", `invalid checkpoint: ${message}`, options);
    this.name = "CheckpointFormatError";
  }
}

/** Parses checkpoint bytes into a config and weights (copies; `bytes` may be dropped after). */
export function parseLlama2cCheckpoint(
  bytes: Uint8Array,
  opts: { name?: string } = {},
): { config: ModelConfig; weights: LlamaWeights } {
  if (bytes.byteLength < HEADER_BYTES) {
    throw new CheckpointFormatError(`${bytes.byteLength} bytes, shorter than the 28-byte header`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const h = Array.from({ length: 7 }, (_, i) => view.getInt32(i * 4, true));
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabRaw, seqLen] = h;
  const shared = vocabRaw > 0;
  const config: ModelConfig = {
    name: opts.name ?? "llama2c",
    dim,
    hiddenDim,
    nLayers,
    nHeads,
    nKvHeads,
    headDim: nHeads > 0 ? dim / nHeads : 0,
    vocabSize: Math.abs(vocabRaw),
    maxSeqLen: seqLen,
    ropeTheta: 10000,
    normEps: 1e-5,
  };
  try {
    validateConfig(config);
    if (!Number.isInteger(config.headDim)) {
      throw new RangeError(`dim ${dim} not divisible by n_heads ${nHeads}`);
    }
  } catch (err) {
    throw new CheckpointFormatError(`header (${h.join(", ")}): ${(err as Error).message}`, { cause: err });
  }
  const { headDim, vocabSize } = config;
  const q = nHeads * headDim;
  const kv = nKvHeads * headDim;
  const perLayer = [
    dim,
    q * dim,
    kv * dim,
    kv * dim,
    dim * q,
    dim,
    hiddenDim * dim,
    dim * hiddenDim,
    hiddenDim * dim,
  ];
  const floats = vocabSize * dim + nLayers * perLayer.reduce((a, b) => a + b, 0) + dim +
    seqLen * headDim + (shared ? 0 : vocabSize * dim);
  const expected = HEADER_BYTES + 4 * floats;
  if (bytes.byteLength !== expected) {
    throw new CheckpointFormatError(
      `header (${h.join(", ")}) implies ${expected} bytes, file has ${bytes.byteLength}`,
    );
  }

  // One aligned copy of the payload, then views into it in file order.
  const all = new Float32Array(floats);
  new Uint8Array(all.buffer).set(bytes.subarray(HEADER_BYTES));
  let off = 0;
  const take = (n: number) => all.subarray(off, off += n);
  const tokEmb = take(vocabSize * dim);
  const stacked = perLayer.map((n) => take(nLayers * n));
  const finalNorm = take(dim);
  take(seqLen * headDim); // legacy freq_cis_real and freq_cis_imag
  const classifier = shared ? undefined : take(vocabSize * dim);

  const layers: LayerWeights[] = [];
  for (let l = 0; l < nLayers; l++) {
    const [attnNorm, wq, wk, wv, wo, ffnNorm, w1, w2, w3] = stacked.map((s, i) =>
      s.subarray(l * perLayer[i], (l + 1) * perLayer[i])
    );
    layers.push({
      attnNorm,
      wq: interleavedToRotateHalf(wq, nHeads, { headDim, inDim: dim }),
      wk: interleavedToRotateHalf(wk, nKvHeads, { headDim, inDim: dim }),
      wv,
      wo,
      ffnNorm,
      w1,
      w2,
      w3,
    });
  }
  return { config, weights: { tokEmb, layers, finalNorm, classifier } };
}
