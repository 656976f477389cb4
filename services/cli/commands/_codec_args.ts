/**
 * Argument parsing shared by the codec commands (compress, decompress, inspect) and the
 * file loading they need. Bad arguments throw `KvrelayError("bad_request")`.
 * @module
 */
import { KvrelayError } from "../../../shared/errors.ts";
import { readNpy } from "../../../shared/npy/mod.ts";
import { parseSafetensors } from "../../../shared/safetensors/mod.ts";
import type { Tensor } from "../../../shared/codec/mod.ts";
import { loadCoefficientsBeside } from "../../../shared/codec/predict/coefficients.ts";
import { EMBEDDED_MODEL_DIR, loadConfig } from "../../../shared/config/mod.ts";

/**
 * Makes the configured model's cross-channel predictor coefficients (KVRELAY_MODEL, else the
 * embedded model) known to the decoder, as loading the model does in the services, so streams
 * the hand-off made decode here too.
 */
export async function holdModelCoefficients(): Promise<void> {
  await loadCoefficientsBeside(loadConfig().modelPath ?? EMBEDDED_MODEL_DIR);
}

/** `--name value` and `--flag` options plus positional arguments. */
export function parseArgs(args: string[], flags: string[]): { opts: Map<string, string>; pos: string[] } {
  const opts = new Map<string, string>();
  const pos: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (!a.startsWith("--")) {
      pos.push(a);
      continue;
    }
    const eq = a.indexOf("=");
    const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
    if (flags.includes(name)) opts.set(name, "true");
    else if (eq > 0) opts.set(name, a.slice(eq + 1));
    else {
      if (i + 1 >= args.length) {
        throw new KvrelayError("bad_request", `--${name} needs a value`, { param: name });
      }
      opts.set(name, args[++i]);
    }
  }
  return { opts, pos };
}

/** Loads a `.npy` or `.safetensors` tensor (`name` picks one of several in a safetensors file). */
export async function loadTensor(path: string, name?: string): Promise<Tensor> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (err) {
    throw new KvrelayError("bad_request", `cannot read ${path}: ${(err as Error).message}`, { param: "in" });
  }
  try {
    if (path.endsWith(".safetensors")) {
      const st = parseSafetensors(bytes);
      const names = [...st.entries.keys()];
      const pick = name ?? (names.length === 1 ? names[0] : undefined);
      if (!pick) {
        throw new KvrelayError("bad_request", `${path} holds ${names.join(", ")}; pick one with --tensor`);
      }
      return st.tensor(pick);
    }
    return readNpy(bytes);
  } catch (err) {
    if (err instanceof KvrelayError) throw err;
    throw new KvrelayError("bad_request", `${path}: ${(err as Error).message}`, { param: "in" });
  }
}

/** A required option. */
export function required(opts: Map<string, string>, name: string): string {
  const v = opts.get(name);
  if (v === undefined) throw new KvrelayError("bad_request", `--${name} is required`, { param: name });
  return v;
}
