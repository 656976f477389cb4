/**
 * Held-out text perplexity of a model through its real runtime (teacher-forced decode
 * steps, `teacher_forced.ts`). The text is the training recipe's held-out set
 * (infra/train/data.py: paragraph i of each source with i % 50 == 0; `eval_text`, seed 9004,
 * documents of about 4000 characters, the set eval.py scores), each document cut to its
 * first `len` tokens (with `<bos>`; a `len` past a document's length scores it whole, as
 * eval.py does). Reports the token-weighted mean NLL and perplexity, per source too, and the
 * second half of each chunk scored twice: after the uncompressed first half, and after the
 * first half's KV went through prefill → evict + encode → decode with the KV settings given.
 * @module
 */
import type { Model } from "../../shared/model/mod.ts";
import type { KvSettings } from "../../shared/handoff/contract.ts";
import { runPrefill } from "../../shared/pipeline/prefill_stage.ts";
import { CompressionJob, cpuFrameEncoder } from "../../shared/pipeline/compress_stage.ts";
import { bundleExpectation, decodeLayerBundle } from "../../shared/pipeline/decode_stage.ts";
import { seededRng } from "../../shared/model/sampling/rng.ts";
import { REPO_DIR } from "../_harness/paths.ts";
import { type HeadCache, teacherForcedNll } from "./teacher_forced.ts";

export interface Perplexity {
  tokens: number;
  nll: number; // mean nats per token
  ppl: number;
}

export interface TextPplResult {
  corpus: string;
  chunks: number;
  len: number;
  all: Perplexity & { bySource: Record<string, Perplexity> };
  /** Tokens [len/2 + 1, len) of each chunk. */
  secondHalf: { uncompressed: Perplexity; compressed: Perplexity; meanRatio: number; meanKept: number };
}

/** The small corpus' files (fetch_text.sh); the large one (fetch_corpus.sh) has train/ and heldout/. */
const SMALL_SOURCES = ["kjv", "devil", "jargon"];

/** Why the held-out corpus cannot be used, or undefined when it is there. */
export async function corpusMissing(dir: string): Promise<string | undefined> {
  try {
    if ((await Deno.stat(`${dir}/heldout`)).isDirectory) return undefined;
  } catch { /* not the large layout */ }
  for (const s of SMALL_SOURCES) {
    try {
      await Deno.stat(`${dir}/${s}.txt`);
    } catch {
      return `${dir}/${s}.txt not found (bash infra/train/fetch_text.sh produces it; or give fetch_corpus.sh's out/)`;
    }
  }
  return undefined;
}

/** The held-out documents with their source, from data.py's own generator. */
async function heldOutDocs(dir: string, n: number): Promise<{ source: string; text: string }[]> {
  const py = `
import json, sys
sys.path.insert(0, "${REPO_DIR}/infra/train")
import data
corpus = data.load_corpus(${JSON.stringify(dir)})
out = []
for d in data.eval_text(corpus, ${n}):
    first = d.split("\\n")[0]
    src = next((s for s in corpus.heldout if any(first in p for p in corpus.heldout[s])), "unknown")
    out.append({"source": src, "text": d})
print(json.dumps(out))
`;
  const gen = await new Deno.Command("python3", { args: ["-c", py], stdout: "piped", stderr: "inherit" })
    .output();
  if (gen.code !== 0) throw new Error("python3 could not produce the held-out text");
  return JSON.parse(new TextDecoder().decode(gen.stdout));
}

function perplexity(sum: number, tokens: number): Perplexity {
  const nll = tokens ? sum / tokens : NaN;
  return { tokens, nll, ppl: Math.exp(nll) };
}

/** Sum and count of the finite entries of `nll` in [from, to). */
function total(nll: Float64Array, from = 0, to = nll.length): [number, number] {
  let s = 0, n = 0;
  for (let t = from; t < to; t++) if (Number.isFinite(nll[t])) (s += nll[t], n++);
  return [s, n];
}

/** The first half's KV after the hand-off's evict + encode + decode, per layer and head. */
async function compressedPrefix(model: Model, ids: number[], kv: KvSettings, tag: string) {
  const c = model.config;
  const pre = await runPrefill(model, ids, {
    kv,
    sampling: { maxTokens: 1, temperature: 0, topP: 1 },
    rng: seededRng(1),
  });
  const out = await new CompressionJob(tag, kv, pre.kv).run(cpuFrameEncoder, () => {});
  const expect = bundleExpectation(c);
  const layers = out.encoded.map((b) => decodeLayerBundle(b, expect)).sort((a, b) => a.layer - b.layer);
  return {
    layers: layers.map((l) => l.heads.map((h): HeadCache => ({ keys: h.keys, values: h.values }))),
    ratio: out.stats.rawBytes / Math.max(1, out.stats.wireBytes),
    kept: out.stats.keptFraction,
  };
}

/** Held-out text perplexity of `model` over `chunks` documents cut to `len` tokens. */
export async function heldOutPerplexity(
  model: Model,
  kv: KvSettings,
  opts: { corpus: string; chunks: number; len: number; batch?: number },
): Promise<TextPplResult> {
  const len = Math.min(opts.len, model.config.maxSeqLen);
  const drawn = await heldOutDocs(opts.corpus, opts.chunks);
  const encoded = drawn.map((d) => model.tokenizer.encode(d.text).slice(0, len));
  const docs = drawn.filter((_, i) => encoded[i].length >= 4); // a half to hand off and one to score
  const seqs = encoded.filter((ids) => ids.length >= 4);
  const nll = await teacherForcedNll(model, seqs.map((ids) => ({ ids })), { batch: opts.batch });

  const bySum = new Map<string, [number, number]>();
  let sum = 0, n = 0;
  docs.forEach((d, i) => {
    const [s, k] = total(nll[i]);
    const acc = bySum.get(d.source) ?? [0, 0];
    bySum.set(d.source, [acc[0] + s, acc[1] + k]);
    sum += s;
    n += k;
  });
  const bySource = Object.fromEntries([...bySum].sort().map(([s, [x, k]]) => [s, perplexity(x, k)]));

  // Second halves: from the uncompressed run, and again after the first half's KV hand-off.
  const halves = seqs.map((ids) => Math.floor(ids.length / 2));
  let baseSum = 0, baseN = 0, ratio = 0, kept = 0;
  const inputs = [];
  for (let i = 0; i < seqs.length; i++) {
    const [s, k] = total(nll[i], halves[i]);
    baseSum += s;
    baseN += k;
    const pre = await compressedPrefix(model, seqs[i].slice(0, halves[i]), kv, `ppl-${i}`);
    ratio += pre.ratio;
    kept += pre.kept;
    inputs.push({ ids: seqs[i], start: { pos: halves[i], layers: pre.layers } });
  }
  const comp = await teacherForcedNll(model, inputs, { batch: opts.batch });
  let compSum = 0, compN = 0;
  comp.forEach((x) => {
    const [s, k] = total(x);
    compSum += s;
    compN += k;
  });
  return {
    corpus: opts.corpus.startsWith(`${REPO_DIR}/`) ? opts.corpus.slice(REPO_DIR.length + 1) : opts.corpus,
    chunks: seqs.length,
    len,
    all: { ...perplexity(sum, n), bySource },
    secondHalf: {
      uncompressed: perplexity(baseSum, baseN),
      compressed: perplexity(compSum, compN),
      meanRatio: ratio / seqs.length,
      meanKept: kept / seqs.length,
    },
  };
}
