/**
 * `deno task kvrelay <command> [args]`: one entry point for every tool. Each command lives
 * in `commands/<name>.ts` and exports `run(args): Promise<number>` (the exit code), so a
 * command loads only what it needs.
 * @module
 */
import { KvrelayError } from "../../shared/errors.ts";

const COMMANDS: Record<string, { file: string; about: string }> = {
  generate: { file: "./commands/generate.ts", about: "run a prompt through the model in one process" },
  compress: { file: "./commands/compress.ts", about: "encode a .npy/.safetensors KV tensor" },
  decompress: { file: "./commands/decompress.ts", about: "decode a compressed stream to .npy" },
  inspect: { file: "./commands/inspect.ts", about: "print a compressed stream's ratio, error and stages" },
  traces: { file: "./commands/traces.ts", about: "OTLP/HTTP receiver that stores and prints span trees" },
  batch: { file: "./commands/batch.ts", about: "submit and follow batch jobs" },
  "dump-kv": { file: "./commands/dump_kv.ts", about: "write a prompt's KV cache as .npy" },
  "calibrate-kv": {
    file: "./commands/calibrate_kv.ts",
    about: "fit the codec's cross-channel KV predictor for a model (kv_predictor.bin)",
  },
};

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(12)} ${c.about}`);
  return `usage: deno task kvrelay <command> [options]\n\ncommands:\n${lines.join("\n")}`;
}

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
