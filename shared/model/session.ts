/**
 * Creates an onnxruntime-node CPU session, raced against a deadline: a stuck backend can
 * leave `InferenceSession.create` pending forever under Deno.
 * @module
 */
import * as ort from "onnxruntime-node";
import { KvrelayError } from "../errors.ts";

/** Default deadline for building a session. */
export const DEFAULT_SESSION_TIMEOUT_MS = 60_000;

/** Builds a CPU session from ONNX bytes; `timeout` and `model_error` are `KvrelayError`s. */
export async function createSession(
  model: Uint8Array,
  opts: { threads?: number; timeoutMs?: number } = {},
): Promise<ort.InferenceSession> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_SESSION_TIMEOUT_MS;
  const creating = ort.InferenceSession.create(model, {
    executionProviders: ["cpu"],
    intraOpNumThreads: opts.threads ?? 1,
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: "all",
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new KvrelayError("timeout", `onnxruntime session not created within ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([creating, deadline]);
  } catch (err) {
    // A session that arrives after the deadline is released, not leaked.
    creating.then((s) => s.release(), () => {});
    if (err instanceof KvrelayError) throw err;
    throw new KvrelayError("model_error", `onnxruntime rejected the model: ${(err as Error).message}`, {
      cause: err,
    });
  } finally {
    clearTimeout(timer);
  }
}
