/**
 * The `fp16` baseline: the values cast to fp16 (round to nearest even) and nothing else, the
 * bytes a real deployment moves when it sends its KV cache as it is. Decoding widens back to
 * the input dtype. Finite values beyond fp16's range are refused rather than sent as ±Inf.
 * @module
 */
import { f16Table32 } from "../../dtype/mod.ts";

/** Adding and subtracting 1.5·2^52 rounds a double to the nearest integer (ties to even). */
const ROUND = 6755399441055744;
const F16_OVERFLOW = 0x477ff000; // 65520: rounds to +Inf in fp16

/** fp16 bits of fp32 values (`bits` are the fp32 bit patterns of the same values). */
export function castToF16(bits32: Uint32Array, x: Float32Array): Uint16Array {
  const n = bits32.length;
  const bits = new Int32Array(bits32.buffer, bits32.byteOffset, n); // int32 loads stay small integers
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    const u = bits[i];
    const a = u & 0x7fffffff;
    const sign = (u >> 16) & 0x8000;
    if (a >= 0x38800000 && a < F16_OVERFLOW) {
      out[i] = sign | ((a - 0x38000000 + 0x0fff + ((a >>> 13) & 1)) >>> 13); // normal: rebias, round
    } else if (a < 0x38800000) {
      out[i] = sign | ((Math.abs(x[i]) * 16777216 + ROUND) - ROUND); // subnormal or zero
    } else if (a > 0x7f800000) {
      out[i] = sign | 0x7e00; // NaN stays NaN
    } else if (a === 0x7f800000) {
      out[i] = sign | 0x7c00;
    } else {
      throw new RangeError(`value ${x[i]} at ${i} is beyond fp16's range; use the raw codec`);
    }
  }
  return out;
}

/** The fp16 body widened back to `dtype`: fp32 values, or the fp16 bits as they are. */
export function widenF16(body: Uint16Array, dtype: "f32" | "f16"): Float32Array | Uint16Array {
  if (dtype === "f16") return body.slice();
  const table = f16Table32();
  const out = new Float32Array(body.length);
  for (let i = 0; i < body.length; i++) out[i] = table[body[i]];
  return out;
}
