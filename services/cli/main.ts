/**
 * `npm run kvrelay -- <command> [args]` (or `deno task kvrelay ...`): one entry point for every
 * tool. Each command lives in `commands/<name>.ts` and exports `run(args): Promise<number>` (the
 * exit code), so a command loads only what it needs. `<command> --help` prints its usage from
 * the table below and exits 0 without loading it.
 * @module
 */
import { KvrelayError } from "../../shared/errors.ts";

const MODEL =
  "[--model PATH] [--tokenizer PATH] [--device cpu|webgpu|auto] (--prompt TEXT | --prompt-file F)";

/** `usage: ""`: the command prints its own usage (it has subcommands of its own). */
export const COMMANDS: Record<string, { file: string; about: string; usage: string }> = {
  generate: {
    file: "./commands/generate.ts",
    about: "run a prompt through the model in one process",
    usage: `generate ${MODEL}
    [--max-tokens N] [--temperature T] [--top-p P] [--top-k K] [--min-p P] [--seed S] [--presence-penalty X]
    [--frequency-penalty X] [--repetition-penalty X] [--min-tokens N] [--stop-token-ids A,B]
    [--ignore-eos] [--codec C] [--error-bound E] [--error-mode rel|abs] [--index-share K|auto]
    [--frames head|layer] [--eviction kvcompress|uniform|recency] [--eviction-rate R]
    [--max-cache-tokens N] [--protected-window N] [--observation-window N] [--max-pool K] [--sink N]
    [--head-floor N] [--canary] [--json]`,
  },
  compress: {
    file: "./commands/compress.ts",
    about: "encode a .npy/.safetensors KV tensor",
    usage: `compress --in X(.npy|.safetensors) --out Y [--codec C] [--error-bound E] [--mode rel|abs]
    [--index-share K|auto] [--predictor qfirst|prev|lorenzo2d] [--fast-predictor auto|none|delta]
    [--role key|value] [--zstd-level N] [--tensor NAME]`,
  },
  decompress: {
    file: "./commands/decompress.ts",
    about: "decode a compressed stream to .npy",
    usage: "decompress --in Y --out Z.npy",
  },
  inspect: {
    file: "./commands/inspect.ts",
    about: "print a compressed stream's ratio, error and stages",
    usage: "inspect STREAM [--json] [--original X.npy]",
  },
  traces: {
    file: "./commands/traces.ts",
    about: "OTLP/HTTP receiver that stores and prints span trees",
    usage: "",
  },
  batch: {
    file: "./commands/batch.ts",
    about: "submit and follow batch jobs",
    usage: "",
  },
  "dump-kv": {
    file: "./commands/dump_kv.ts",
    about: "write a prompt's KV cache as .npy",
    usage: `dump-kv ${MODEL} --out X.npy`,
  },
  "quantize-weights": {
    file: "./commands/quantize_weights.ts",
    about: "copy a model folder with its matrices in 8 bits (row scales), widened at load",
    usage: "quantize-weights --model DIR --out DIR",
  },
  "calibrate-kv": {
    file: "./commands/calibrate_kv.ts",
    about: "fit the codec's cross-channel KV predictor for a model (kv_predictor.bin)",
    usage:
      `calibrate-kv --model M [--tokenizer T] [--device cpu|webgpu|auto] --prompt-file F [--prompt-file G ...]
    --out DIR/kv_predictor.bin [--lambda 1e-3]`,
  },
};

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(12)} ${c.about}`);
  return `usage: npm run kvrelay -- <command> [options]   (or: deno task kvrelay <command> ...)\n\ncommands:\n${
    lines.join("\n")
  }\n\n'<command> --help' shows a command's options.`;
}

const wantsHelp = (args: string[]) => args.includes("--help") || args.includes("-h");

export async function main(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  if (!name || name === "--help" || name === "-h") {
    console.log(usage());
    return name ? 0 : 2;
  }
  const command = COMMANDS[name];
  if (!command) {
    console.error(`kvrelay: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  if (command.usage && wantsHelp(rest)) {
    console.log(`kvrelay ${name}: ${command.about}\n\nusage: npm run kvrelay -- ${command.usage}`);
    return 0;
  }
  const mod = await import(command.file) as { run(args: string[]): Promise<number> };
  try {
    return await mod.run(rest);
  } catch (err) {
    if (err instanceof KvrelayError || err instanceof TypeError || err instanceof RangeError) {
      console.error(`kvrelay ${name}: ${(err as Error).message}`);
      return err instanceof KvrelayError && err.code === "bad_request" ? 2 : 1;
    }
    throw err;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
