/**
 * Weights kept in 8 bits on disk and widened to fp32 at load: every matrix row has one
 * symmetric scale, `w[r, c] ≈ q[r, c] × scale[r]` with `q` in [-127, 127].
 *
 * Why: a model folder must fit beside the GPU pack in what travels to the device machine, and
 * int8 halves fp16's bytes. Rows (output channels) get their own scale because their ranges
 * differ by orders of magnitude; one scale per tensor would flatten the small rows.
 *
 * On disk (safetensors): the matrix `X` as I8 `[rows, cols]` plus `X_scale` as F32 `[rows]`.
 * `config.json` says so with `"quantization_config": {"quant_method": "kvrelay-int8-rows"}`, so
 * a reader that does not know the method refuses it instead of reading bytes as weights.
 * @module
 */

/** The `quantization_config.quant_method` that marks such a folder. */
export const INT8_ROWS_METHOD = "kvrelay-int8-rows";

/** The name of a quantised tensor's scales. */
export function scaleTensorName(name: string): string {
  return `${name}_scale`;
}

/** One matrix in 8 bits: `q` row-major `[rows, cols]`, `scale` one per row. */
export interface Int8Rows {
  q: Int8Array;
  scale: Float32Array;
}

/** Rounds each row to 8 bits with its own scale (max |w| / 127); an all-zero row gets scale 0. */
export function quantizeRows(w: Float32Array, rows: number, cols: number): Int8Rows {
  if (w.length !== rows * cols) throw new RangeError(`${w.length} values are not [${rows}, ${cols}]`);
  const q = new Int8Array(rows * cols);
  const scale = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    const row = w.subarray(r * cols, (r + 1) * cols);
    let max = 0;
    for (let c = 0; c < cols; c++) {
      const a = Math.abs(row[c]);
      if (!(a <= max)) max = a; // NaN fails the test and lands here, then is refused below
    }
    if (!Number.isFinite(max)) throw new RangeError(`row ${r} holds a value that is not finite`);
    // round the scale to fp32 first: widening multiplies by the stored scale, not the exact one
    const s = Math.fround(max / 127);
    scale[r] = s;
    if (s === 0) continue;
    for (let c = 0; c < cols; c++) q[r * cols + c] = Math.max(-127, Math.min(127, Math.round(row[c] / s)));
  }
  return { q, scale };
}

/** Widens 8-bit rows back to fp32. */
export function widenRows(m: Int8Rows, rows: number, cols: number): Float32Array {
  if (m.q.length !== rows * cols || m.scale.length !== rows) {
    throw new RangeError(`${m.q.length} values and ${m.scale.length} scales are not [${rows}, ${cols}]`);
  }
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const s = m.scale[r];
    for (let i = r * cols, end = i + cols; i < end; i++) out[i] = m.q[i] * s;
  }
  return out;
}

/**
 * The quantisation a `config.json` declares: `"none"`, or `INT8_ROWS_METHOD`. Any other method
 * (GPTQ, AWQ, ...) is an `Error` naming it, since its tensors would be read as garbage.
 */
export function declaredQuantization(cfg: Record<string, unknown>): "none" | typeof INT8_ROWS_METHOD {
  const qc = cfg.quantization_config;
  if (qc === undefined || qc === null) return "none";
  const method = typeof qc === "object" && !Array.isArray(qc)
    ? (qc as Record<string, unknown>).quant_method
    : undefined;
  if (method === INT8_ROWS_METHOD) {
    // what quantize-weights writes beside the method; any other value would be misread, so refuse it
    const fields: Record<string, unknown> = { quant_method: INT8_ROWS_METHOD, bits: 8, group: "row" };
    for (const [k, v] of Object.entries(qc as Record<string, unknown>)) {
      if (!(k in fields) || fields[k] !== v) {
        throw new Error(
          `quantization_config.${k} = ${JSON.stringify(v)} is not supported with "${INT8_ROWS_METHOD}"`,
        );
      }
    }
    return INT8_ROWS_METHOD;
  }
  throw new Error(
    `quantization_config ${JSON.stringify(qc)} is not supported (only quant_method "${INT8_ROWS_METHOD}")`,
  );
}
