/**
 * Where eval:kv-stats gets its KV: a model's prefill of the bench prompt (`--model`), or a
 * folder of `X.k.npy` / `X.v.npy` pairs `[layer, position, kv_head, head_dim]` fp32, keys
 * after RoPE (`--samples`: ../shared/kv-samples/<model>/, or what `kvrelay dump-kv` wrote).
 * Either way the result is per-(layer, KV head) frames `[T, head_dim]`, K and V.
 * @module
 */
import { basename } from "node:path";
import { Model, type ModelLoadOptions } from "../../../shared/model/mod.ts";
import type { CoefficientSet } from "../../../shared/codec/predict/coefficients.ts";
import { headFrames } from "../_kv_dump.ts";
import { BENCH_PROMPT_FILES, benchPromptText } from "../_bench_prompt.ts";
import type { KvFrame } from "./frame.ts";

/** A source's frames and what they are. */
export interface KvSource {
  /** The model's name, or the samples folder's. */
  name: string;
  from: "model" | "samples";
  path: string;
  /** `[layers, tokens, kv_heads, head_dim]` of one sample (tokens: the longest). */
  shape: [number, number, number, number];
  samples: string[];
  /** What the prompt was, for a model. */
  prompt?: { files: string[]; tokens: number };
  /** The model's cross-channel predictor coefficients, for the hand-off's kvsort. */
  coefficients?: CoefficientSet;
  frames: KvFrame[];
}

/** Every `X.k.npy` with its `X.v.npy` in `dir`, by name; `RangeError` when there is none. */
export function samplesSource(dir: string): KvSource {
  const bases = [...Deno.readDirSync(dir)]
    .filter((e) => e.isFile && e.name.endsWith(".k.npy"))
    .map((e) => e.name.slice(0, -".k.npy".length))
    .filter((b) => {
      try {
        return Deno.statSync(`${dir}/${b}.v.npy`).isFile;
      } catch {
        return false;
      }
    })
    .sort();
  if (!bases.length) throw new RangeError(`${dir}: no X.k.npy with its X.v.npy`);
  const frames: KvFrame[] = [];
  for (const sample of bases) {
    for (const kind of ["K", "V"] as const) {
      for (const f of headFrames(`${dir}/${sample}.${kind.toLowerCase()}.npy`)) {
        frames.push({ ...f, kind, sample });
      }
    }
  }
  return {
    name: basename(dir.replace(/\/+$/, "")),
    from: "samples",
    path: dir,
    shape: shapeOf(frames),
    samples: bases,
    frames,
  };
}

/** Options of {@link modelSource}. */
export interface ModelSourceOptions {
  /** Prompt tokens (capped at the model's context − 1). */
  tokens: number;
  /** The prompt's text instead of the bench prompt. */
  promptFile?: string;
  /** A llama2.c checkpoint's tokenizer (a Hugging Face folder holds its own). */
  tokenizerPath?: string;
  device?: ModelLoadOptions["device"];
  threads?: number;
}

/** The model's KV for the first `tokens` tokens of the bench prompt (or `promptFile`). */
export async function modelSource(modelPath: string, opts: ModelSourceOptions): Promise<KvSource> {
  const model = await Model.load({
    modelPath,
    tokenizerPath: opts.tokenizerPath,
    device: opts.device,
    threads: opts.threads,
  });
  try {
    const text = opts.promptFile ? await Deno.readTextFile(opts.promptFile) : benchPromptText();
    const want = Math.min(opts.tokens, model.config.maxSeqLen - 1);
    const ids = firstTokens((t) => model.tokenizer.encode(t), text, want);
    if (ids.length < opts.tokens) {
      console.error(
        `prompt: ${ids.length} tokens (asked ${opts.tokens}; the context is ${model.config.maxSeqLen})`,
      );
    }
    const pre = await model.prefill(ids);
    const { nKvHeads: H, headDim: D } = model.config, T = pre.nPos;
    const frames: KvFrame[] = [];
    for (const kind of ["K", "V"] as const) {
      pre.layers.forEach((l, layer) => {
        const x = kind === "K" ? l.keys : l.values; // (nKvHeads, T, headDim)
        for (let head = 0; head < H; head++) {
          const data = x.slice(head * T * D, (head + 1) * T * D);
          frames.push({ kind, sample: "prompt", layer, head, rows: T, cols: D, data });
        }
      });
    }
    return {
      name: model.config.name,
      from: "model",
      path: modelPath,
      shape: shapeOf(frames),
      samples: ["prompt"],
      prompt: { files: opts.promptFile ? [opts.promptFile] : BENCH_PROMPT_FILES, tokens: T },
      coefficients: model.kvPredictor,
      frames,
    };
  } finally {
    await model.close();
  }
}

/**
 * The first `n` tokens of `text`, tokenizing a growing prefix: a llama2.c BPE over the whole bench
 * prompt takes minutes. The prefix runs 16 tokens past `n`, so the cut does not change token n.
 */
export function firstTokens(encode: (text: string) => number[], text: string, n: number): number[] {
  for (let chars = 8 * n + 64;; chars *= 2) {
    const ids = encode(text.slice(0, chars));
    if (ids.length >= n + 16 || chars >= text.length) return ids.slice(0, n);
  }
}

function shapeOf(frames: KvFrame[]): [number, number, number, number] {
  const max = (f: (x: KvFrame) => number) => Math.max(...frames.map(f));
  return [max((f) => f.layer) + 1, max((f) => f.rows), max((f) => f.head) + 1, frames[0].cols];
}
