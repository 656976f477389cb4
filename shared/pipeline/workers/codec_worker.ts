/**
 * A codec worker: encodes frames and decodes streams with the CPU codec (its WebAssembly
 * kernels included) on a thread of its own. Messages: `{ id, op: "encode", frames, opts }` →
 * `{ id, bytes }`; `{ id, op: "decode", streams, maxElements }` → `{ id, values, shapes }`;
 * a failure → `{ id, error: { name, message } }`. Buffers travel transferred, not copied.
 * @module
 */
import { decode, encode, type EncodeOptions } from "../../codec/mod.ts";
import { adoptCoefficientSet } from "../../codec/predict/coefficients.ts";

interface EncodeJob {
  id: number;
  op: "encode";
  frames: { data: Float32Array; rows: number; cols: number }[];
  opts: EncodeOptions[];
}
interface DecodeJob {
  id: number;
  op: "decode";
  streams: Uint8Array[];
  maxElements: number;
  /** Coefficient sets the sending thread holds (cross-channel streams name them by hash). */
  coefficients?: { hash: string; bytes: Uint8Array }[];
}

// deno-lint-ignore no-explicit-any
const scope = self as any;
scope.onmessage = (e: MessageEvent<EncodeJob | DecodeJob>) => {
  const job = e.data;
  try {
    if (job.op === "encode") {
      const bytes = job.frames.map((f, i) =>
        encode({ dtype: "f32", shape: [f.rows, f.cols], data: f.data }, job.opts[i])
      );
      scope.postMessage({ id: job.id, bytes }, bytes.map((b) => b.buffer));
    } else {
      for (const c of job.coefficients ?? []) adoptCoefficientSet(c.hash, c.bytes);
      const tensors = job.streams.map((s) => decode(s, { maxElements: job.maxElements }));
      const values = tensors.map((t) => t.data);
      scope.postMessage(
        { id: job.id, values, shapes: tensors.map((t) => t.shape), dtypes: tensors.map((t) => t.dtype) },
        values.map((v) => v.buffer),
      );
    }
  } catch (err) {
    const { name, message } = err as Error;
    scope.postMessage({ id: job.id, error: { name: name ?? "Error", message: message ?? String(err) } });
  }
};
