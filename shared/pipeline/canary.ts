/**
 * The online accuracy canary: for a sampled request, what the client got (each step's
 * next-token distribution on the compressed, evicted KV) against the same tokens
 * teacher-forced on the uncompressed KV, prefilled again from the prompt's ids.
 *
 * The shadow is a re-prefill, not a copy of prefill's KV: decode never receives raw KV (it
 * stays on the prefill node), and for a model this size one prefill costs less than moving
 * the fp16 cache. It runs after the sequence's last token was sent and before its `done`, on
 * the tokens already streamed, so it cannot change the answer; only `done` waits for it. Its
 * steps share the decode model with the engine's loop: onnxruntime-node runs a session on the
 * JS thread (`run` resolves from a `setImmediate`), so the two interleave step by step and never
 * overlap, and the shadow's steps take decode time from the live batch (the canary's cost).
 * @module
 */
import type { Model } from "../model/mod.ts";
import type { CanaryUsage } from "../handoff/contract.ts";
import type { SequenceSink } from "./decode_engine.ts";
import { argmax, klFromLogits } from "../model/sampling/mod.ts";

const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits;

/**
 * Teacher-forces `tokens` after `promptIds` on the model's full KV (no eviction, no codec)
 * and compares each step's logits with `live[i]`, the logits the client's run had after
 * the same tokens.
 */
export async function shadowCompare(
  model: Model,
  promptIds: number[],
  tokens: number[],
  live: Float32Array[],
): Promise<CanaryUsage> {
  const t0 = performance.now();
  const { nKvHeads, headDim: hd, maxSeqLen } = model.config;
  const steps = Math.min(live.length, tokens.length, maxSeqLen - promptIds.length);
  let agree = 0, kl = 0;
  if (steps > 0) {
    const pre = await model.prefill(promptIds);
    const T = pre.nPos, P = T + steps;
    // Each layer's cache padded to its final length once; a step masks the rows not yet written.
    const past = pre.layers.map((l) => {
      const grow = (x: Float32Array) => {
        const out = new Float32Array(nKvHeads * P * hd);
        for (let h = 0; h < nKvHeads; h++) out.set(x.subarray(h * T * hd, (h + 1) * T * hd), h * P * hd);
        return out;
      };
      return { keys: grow(l.keys), values: grow(l.values) };
    });
    for (let i = 0; i < steps; i++) {
      const pos = T + i;
      const step = await model.decode({
        tokens: [tokens[i]],
        positions: [pos],
        past,
        pastLengths: past.map(() => new Int32Array(nKvHeads).fill(pos)),
      });
      past.forEach((l, layer) => {
        for (let h = 0; h < nKvHeads; h++) {
          l.keys.set(step.newKeys[layer].subarray(h * hd, (h + 1) * hd), (h * P + pos) * hd);
          l.values.set(step.newValues[layer].subarray(h * hd, (h + 1) * hd), (h * P + pos) * hd);
        }
      });
      if (argmax(step.logits) === argmax(live[i])) agree++;
      kl += klFromLogits(step.logits, live[i]);
    }
  }
  return {
    tokens: steps,
    top1_agreement: steps ? round(agree / steps, 5) : 1,
    mean_kl: steps ? round(kl / steps, 6) : 0,
    ms: round(performance.now() - t0, 3),
  };
}

/**
 * Wraps a sequence's sink so that the canary watches it: it records each step's logits and
 * each token, and on `done` runs {@link shadowCompare} and hands `onDone` the report with
 * `canary` added. A shadow that fails reports nothing rather than failing the request.
 */
export function withCanary(model: Model, promptIds: number[], sink: SequenceSink): SequenceSink {
  const live: Float32Array[] = [];
  const tokens: number[] = [];
  return {
    onToken: (id, text) => {
      tokens.push(id);
      sink.onToken(id, text);
    },
    onLogits: (logits) => {
      live.push(logits.slice());
      sink.onLogits?.(logits);
    },
    onError: (err) => sink.onError(err),
    onDone: (reason, n, ms, kv) => {
      shadowCompare(model, promptIds, tokens, live).then(
        (canary) => sink.onDone(reason, n, ms, { ...kv, canary }),
        (err) => {
          console.error(`[decode] canary shadow failed: ${err?.message ?? err}`);
          sink.onDone(reason, n, ms, kv);
        },
      );
    },
  };
}
