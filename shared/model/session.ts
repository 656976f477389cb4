/**
 * Creates an onnxruntime-node session on the CPU or WebGPU execution provider, raced
 * against a deadline: a stuck backend can leave `InferenceSession.create` pending forever
 * under Deno.
 *
 * WebGPU notes (onnxruntime-node 1.30): the binding accepts the EP options `deviceId`,
 * `preferredLayout`, `validationMode`, `enableRobustness`, `forceCpuNodeNames` and the
 * buffer cache modes, and rejects anything else ("WebGPU EP has an unrecognized option").
 * `preferredOutputLocation` switches the session to IO binding: outputs marked
 * `"gpu-buffer"` come back as tensors whose `gpuBuffer` is the native value, which can be
 * fed to a later run but not downloaded (`getData()` fails: "not implemented").
 * @module
 */
import * as ort from "onnxruntime-node";
import { KvrelayError } from "../errors.ts";
import { type ModelDevice, withDeadline } from "./device.ts";

/** Default deadline for building a session. */
export const DEFAULT_SESSION_TIMEOUT_MS = 60_000;

/** Where each output of an IO-bound session lands. */
export type OutputLocations = Record<string, "cpu" | "gpu-buffer">;

/** Options of `createSession`. */
export interface SessionOptions {
  /** Intra-op threads of the CPU provider (also runs what WebGPU leaves to the CPU); default 1. */
  threads?: number;
  /** Deadline for building the session (default 60 s). */
  timeoutMs?: number;
  /** Execution provider (default cpu). */
  device?: ModelDevice;
  /** Per-output locations; every output must be named. Turns on IO binding. */
  outputLocations?: OutputLocations;
}

/**
 * Builds a session from ONNX bytes. Failures are `KvrelayError`s: `timeout` when the
 * deadline passes, `unavailable` when the WebGPU provider cannot start (no adapter, device
 * lost), `model_error` when onnxruntime rejects the graph.
 *
 * @example
 * ```ts
 * import { createSession } from "./session.ts";
 * const session = await createSession(onnxBytes, { device: "webgpu", timeoutMs: 30_000 });
 * ```
 */
export async function createSession(
  model: Uint8Array,
  opts: SessionOptions = {},
): Promise<ort.InferenceSession> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_SESSION_TIMEOUT_MS;
  const device = opts.device ?? "cpu";
  const options: ort.InferenceSession.SessionOptions = {
    executionProviders: device === "webgpu" ? [{ name: "webgpu" }] : ["cpu"],
    intraOpNumThreads: opts.threads ?? 1,
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: "all",
  };
  if (opts.outputLocations) options.preferredOutputLocation = opts.outputLocations;
  let creating: Promise<ort.InferenceSession>;
  try {
    creating = ort.InferenceSession.create(model, options);
  } catch (err) {
    throw rejected(device, err);
  }
  try {
    // A session that arrives after the deadline is released, not leaked.
    return await withDeadline(creating, timeoutMs, `onnxruntime ${device} session`, (s) => s.release());
  } catch (err) {
    if (err instanceof KvrelayError) throw err;
    throw rejected(device, err);
  }
}

function rejected(device: ModelDevice, err: unknown): KvrelayError {
  const msg = (err as Error)?.message ?? String(err);
  if (device === "webgpu") {
    const noAdapter = /Failed to get a WebGPU adapter: ([^\n]*)/.exec(msg);
    const detail = noAdapter ? `no WebGPU adapter (${noAdapter[1].trim()})` : msg;
    return new KvrelayError(
      "unavailable",
      `the WebGPU execution provider could not start: ${detail}; use device cpu or auto`,
      { cause: err },
    );
  }
  return new KvrelayError("model_error", `onnxruntime rejected the model: ${msg}`, { cause: err });
}
