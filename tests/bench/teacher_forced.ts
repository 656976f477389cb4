/**
 * Teacher-forced next-token NLL through the model's public runtime. `Model.prefill` returns
 * logits at the last position only, so every position is scored by batched one-token
 * `Model.decode` steps: B sequences at once, each feeding its own tokens, each KV head
 * attending to its own valid past (zero-padded, masked past its length), as the decode
 * engine runs them. A sequence may start from a given KV cache (for example a prompt's KV
 * after eviction and lossy encoding), one past per head, with its first fed position.
 * Knows nothing about tokenization or data sets.
 * @module
 */
import type { Model } from "../../shared/model/mod.ts";

/** One KV head's cached keys and values, each `[n, headDim]`. */
export interface HeadCache {
  keys: Float32Array;
  values: Float32Array;
}

/** A sequence to score: `ids[t + 1]` is scored from the logits after feeding `ids[t]`. */
export interface ScoreInput {
  ids: number[];
  /** Cached KV of `ids[0..pos)`, `layers[l][h]` per layer and KV head; default: none, pos 0. */
  start?: { pos: number; layers: HeadCache[][] };
}

/** Per input, `nll[t]` = -ln p(ids[t + 1] | ids[0..t]) for t >= start pos; NaN before it. */
export type PositionNll = Float64Array;

const GROW = 64; // past capacity grows by this many positions

/** NLL of each position of each input, `batch` sequences per decode step. */
export async function teacherForcedNll(
  model: Model,
  inputs: ScoreInput[],
  opts: { batch?: number } = {},
): Promise<PositionNll[]> {
  const batch = opts.batch ?? 16;
  const out: PositionNll[] = [];
  for (let i = 0; i < inputs.length; i += batch) {
    out.push(...await scoreBatch(model, inputs.slice(i, i + batch)));
  }
  return out;
}

async function scoreBatch(model: Model, inputs: ScoreInput[]): Promise<PositionNll[]> {
  const { nLayers, nKvHeads: H, headDim: hd, vocabSize: V, maxSeqLen } = model.config;
  const B = inputs.length;
  for (const inp of inputs) {
    if (inp.ids.length > maxSeqLen) throw new RangeError(`${inp.ids.length} tokens; context is ${maxSeqLen}`);
  }
  const starts = inputs.map((s) => s.start?.pos ?? 0);
  const lens: Int32Array[] = []; // per layer (B * H): valid past length of each head
  for (let l = 0; l < nLayers; l++) {
    lens.push(Int32Array.from({ length: B * H }, (_, bh) => {
      const h = inputs[Math.floor(bh / H)].start?.layers[l][bh % H];
      return h ? h.keys.length / hd : 0;
    }));
  }
  let cap = Math.max(0, ...lens.map((x) => Math.max(...x))) + GROW;
  // keys[l], values[l]: (B, H, cap, hd), zero past each head's length.
  let keys = lens.map(() => new Float32Array(B * H * cap * hd));
  let values = lens.map(() => new Float32Array(B * H * cap * hd));
  for (let l = 0; l < nLayers; l++) {
    for (let bh = 0; bh < B * H; bh++) {
      const h = inputs[Math.floor(bh / H)].start?.layers[l][bh % H];
      if (!h) continue;
      keys[l].set(h.keys, bh * cap * hd);
      values[l].set(h.values, bh * cap * hd);
    }
  }
  const grow = (to: number) => {
    const re = (a: Float32Array) => {
      const b = new Float32Array(B * H * to * hd);
      for (let bh = 0; bh < B * H; bh++) b.set(a.subarray(bh * cap * hd, (bh + 1) * cap * hd), bh * to * hd);
      return b;
    };
    keys = keys.map(re);
    values = values.map(re);
    cap = to;
  };

  const nll = inputs.map((s) => new Float64Array(Math.max(0, s.ids.length - 1)).fill(NaN));
  const first = Math.min(...starts);
  const last = Math.max(...inputs.map((s) => s.ids.length - 2));
  for (let t = first; t <= last; t++) {
    // A sequence outside [start, len - 2] feeds a placeholder, is not scored and keeps its past.
    const active = inputs.map((s, b) => t >= starts[b] && t <= s.ids.length - 2);
    const maxLen = Math.max(...lens.map((x) => Math.max(...x)));
    if (maxLen + 1 > cap) grow(maxLen + GROW);
    const res = await model.decode({
      tokens: inputs.map((s, b) => active[b] ? s.ids[t] : s.ids[0]),
      positions: inputs.map((_, b) => active[b] ? t : 0),
      past: keys.map((k, l) => ({ keys: k, values: values[l] })),
      pastLengths: lens.map((x) => Int32Array.from(x)),
    });
    for (let b = 0; b < B; b++) {
      if (!active[b]) continue;
      nll[b][t] = nllOf(res.logits.subarray(b * V, (b + 1) * V), inputs[b].ids[t + 1]);
      for (let l = 0; l < nLayers; l++) {
        for (let h = 0; h < H; h++) {
          const bh = b * H + h;
          const at = (bh * cap + lens[l][bh]) * hd;
          keys[l].set(res.newKeys[l].subarray(bh * hd, (bh + 1) * hd), at);
          values[l].set(res.newValues[l].subarray(bh * hd, (bh + 1) * hd), at);
          lens[l][bh]++;
        }
      }
    }
  }
  return nll;
}

/** -ln softmax(logits)[target], in float64. */
export function nllOf(logits: Float32Array, target: number): number {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  return max + Math.log(sum) - logits[target];
}
