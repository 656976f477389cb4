/**
 * `kvrelay compress --in X(.npy|.safetensors) --out Y [--codec kvsort] [--error-bound 1e-2]
 * [--mode rel|abs] [--index-share K|auto] [--predictor qfirst|prev|lorenzo2d|token|auto]
 * [--fast-predictor auto|none|delta] [--role key|value] [--zstd-level N] [--tensor NAME]`: encodes
 * one tensor. An option the codec does not have, or one it does not know, is refused by name.
 * @module
 */
import { KvrelayError } from "../../../shared/errors.ts";
import {
  CODEC_TRAITS,
  type CodecName,
  CODECS,
  encode,
  type EncodeOptions,
  PREDICTORS,
} from "../../../shared/codec/mod.ts";
import { loadTensor, parseArgs, required } from "./_codec_args.ts";

const KIVI = new Set<CodecName>(["kivi8", "kivi4", "kivi2"]);
const ZSTD_STAGE = new Set<CodecName>(["kvsort", "sz", "zstd", "fp16_zstd"]);

/** Each option and the codecs it applies to. */
const OPTION_APPLIES: Record<string, (c: CodecName) => boolean> = {
  in: () => true,
  out: () => true,
  tensor: () => true,
  codec: () => true,
  "error-bound": (c) => CODEC_TRAITS[c].bounded,
  mode: (c) => CODEC_TRAITS[c].bounded,
  "index-share": (c) => CODEC_TRAITS[c].sortIndex,
  predictor: (c) => CODEC_TRAITS[c].family === "max-ratio",
  "fast-predictor": (c) => c === "fast",
  role: (c) => KIVI.has(c),
  "zstd-level": (c) => ZSTD_STAGE.has(c),
};

export async function run(args: string[]): Promise<number> {
  const { opts } = parseArgs(args, []);
  const bad = (msg: string, param: string) => new KvrelayError("bad_request", msg, { param });
  const codec = (opts.get("codec") ?? "kvsort") as CodecName;
  if (!CODECS.includes(codec)) throw bad(`unknown codec '${codec}' (${CODECS.join(", ")})`, "codec");
  for (const name of opts.keys()) {
    const applies = OPTION_APPLIES[name];
    if (!applies) throw bad(`unknown option --${name}`, name);
    if (!applies(codec)) throw bad(`--${name} does not apply to the ${codec} codec`, name);
  }
  const eb = Number(opts.get("error-bound") ?? "1e-2");
  if (!(eb >= 0) || !Number.isFinite(eb)) {
    throw bad(`bad --error-bound '${opts.get("error-bound")}'`, "error-bound");
  }
  const mode = opts.get("mode") ?? "rel";
  if (mode !== "rel" && mode !== "abs") throw bad(`--mode must be rel or abs`, "mode");
  const ks = opts.get("index-share") ?? "8";
  const indexShare = ks === "auto" ? "auto" : Number(ks);
  if (indexShare !== "auto" && !(Number.isSafeInteger(indexShare) && indexShare >= 1)) {
    throw bad(`--index-share must be a positive integer or auto`, "index-share");
  }
  const predictor = opts.get("predictor") ?? "qfirst";
  // auto and token are the CPU codec's adaptive choices (cross needs a model's coefficients and a slot)
  if (!Object.hasOwn(PREDICTORS, predictor) && predictor !== "auto" && predictor !== "token") {
    throw bad(`unknown predictor '${predictor}'`, "predictor");
  }
  const fastPredictor = opts.get("fast-predictor") ?? "auto";
  if (fastPredictor !== "auto" && fastPredictor !== "none" && fastPredictor !== "delta") {
    throw bad(`--fast-predictor must be auto, none or delta`, "fast-predictor");
  }
  const role = opts.get("role") ?? "key";
  if (role !== "key" && role !== "value") throw bad(`--role must be key or value`, "role");
  const level = opts.has("zstd-level") ? Number(opts.get("zstd-level")) : undefined;
  if (level !== undefined && !Number.isInteger(level)) throw bad(`bad --zstd-level`, "zstd-level");
  const t = await loadTensor(required(opts, "in"), opts.get("tensor"));
  const options: EncodeOptions = {
    codec,
    errorBound: eb,
    mode,
    indexShare,
    predictor: predictor as EncodeOptions["predictor"],
    fastPredictor,
    role,
    zstdLevel: level,
  };
  const bytes = encode(t, options);
  const out = required(opts, "out");
  await Deno.writeFile(out, bytes);
  const inBytes = t.data.byteLength;
  console.log(
    `${out}: ${bytes.length} bytes (${(inBytes / bytes.length).toFixed(2)}x of ${t.dtype} [${t.shape}])`,
  );
  return 0;
}
