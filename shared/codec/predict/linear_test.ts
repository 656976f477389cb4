import { assert, assertEquals, assertThrows } from "@std/assert";
import { decode, decodeWithInfo, encode, type EncodeOptions } from "../mod.ts";
import { kvFrame, rng } from "../testdata/gen.ts";
import { assertBound } from "../_testing.ts";
import { type Dtype, toFloat32 } from "../../dtype/mod.ts";
import { PredictorFit } from "./calibrate.ts";
import {
  buildCoefficientSet,
  type CoefficientSet,
  parseCoefficientSet,
  registerCoefficientSet,
} from "./coefficients.ts";
import { CorruptStreamError, UnknownCoefficientsError } from "../errors.ts";

/** A frame whose channels mix a few latent factors (low rank, like V) plus noise. */
function lowRankFrame(rows: number, cols: number, seed: number): Float32Array {
  const m = rng(cols); // the same mixing for every frame of this width, as in one (layer, head)
  const mix = Float32Array.from({ length: 3 * cols }, () => m() - 0.5);
  const r = rng(seed);
  const x = new Float32Array(rows * cols);
  let f0 = 0, f1 = 0, f2 = 0;
  for (let t = 0; t < rows; t++) {
    f0 = 0.3 * f0 + (r() - 0.5), f1 = r() - 0.5, f2 = r() - 0.5;
    for (let c = 0; c < cols; c++) {
      x[t * cols + c] = 4 * (mix[c] * f0 + mix[cols + c] * f1 + mix[2 * cols + c] * f2) + 0.05 * (r() - 0.5);
    }
  }
  return x;
}

function calibrated(cols: number, seed: number): CoefficientSet {
  const fit = new PredictorFit(cols);
  for (let i = 0; i < 3; i++) fit.add(lowRankFrame(200, cols, seed + i), 200);
  return registerCoefficientSet(buildCoefficientSet(cols, [fit.solve({ role: "value", layer: 2, head: 1 })]));
}

const SLOT = { role: "value", layer: 2, head: 1 } as const;

Deno.test("PredictorFit.solve() recovers a channel that is an exact mix of earlier ones", () => {
  const cols = 6, rows = 400, r = rng(3);
  const x = new Float32Array(rows * cols);
  for (let t = 0; t < rows; t++) {
    for (let c = 0; c < 5; c++) x[t * cols + c] = r() - 0.5;
    x[t * cols + 5] = 2 * x[t * cols + 1] - 0.5 * x[t * cols + 3] + 0.25;
  }
  const fit = new PredictorFit(cols);
  fit.add(x, rows);
  const p = fit.solve({ role: "key", layer: 0, head: 0 }, 1e-9);
  const row5 = p.w.subarray(10, 15); // W[5][0..4]
  assert(Math.abs(row5[1] - 2) < 1e-3 && Math.abs(row5[3] + 0.5) < 1e-3, `${row5}`);
  assert(Math.abs(p.b[5] - 0.25) < 1e-3 && Math.abs(p.a[5]) < 1e-3, `${p.a[5]} ${p.b[5]}`);
});

Deno.test("encode() with the cross predictor keeps the bound pointwise and beats the token predictor on low-rank KV", () => {
  const cols = 32, set = calibrated(cols, 100);
  const base: EncodeOptions = { codec: "kvsort", mode: "rel", coefficients: set, ...SLOT };
  for (const eb of [1e-3, 1e-2, 1e-1]) {
    const t = { dtype: "f32" as const, shape: [300, cols], data: lowRankFrame(300, cols, 7) };
    const cross = encode(t, { ...base, errorBound: eb, predictor: "cross" });
    const { tensor, info } = decodeWithInfo(cross);
    assertEquals(info.linear, { kind: "cross", coefficients: set.hash });
    assertEquals(info.k, 0);
    assertBound(t, tensor, info.eb!, `eb ${eb}`);
    const token = encode(t, { ...base, errorBound: eb, predictor: "token" });
    assert(cross.length < token.length, `eb ${eb}: cross ${cross.length} vs token ${token.length}`);
    // the adaptive default finds the cross predictor on its own
    assertEquals(
      decodeWithInfo(encode(t, { ...base, errorBound: eb, predictor: "auto" })).info.linear?.kind,
      "cross",
      `eb ${eb}`,
    );
  }
  // other dtypes and special values (NaN, ±Inf, -0, subnormals) through the same coefficients
  for (const dtype of ["f32", "f16", "bf16"] as Dtype[]) {
    const t = kvFrame(120, cols, dtype, 9, true);
    const { tensor, info } = decodeWithInfo(encode(t, { ...base, errorBound: 1e-2, predictor: "cross" }));
    assertBound(t, tensor, info.eb!, dtype);
  }
});

Deno.test("encode() with the token predictor keeps the bound with specials in every dtype", () => {
  for (const dtype of ["f32", "f16", "bf16"] as Dtype[]) {
    const t = kvFrame(40, 17, dtype, 5, true);
    const bytes = encode(t, { codec: "sz", errorBound: 1e-2, predictor: "token" });
    const { tensor, info } = decodeWithInfo(bytes);
    assertEquals(info.linear, { kind: "token" });
    assertBound(t, tensor, info.eb!, dtype);
  }
});

Deno.test("decode() of a cross stream without its coefficient set is an UnknownCoefficientsError", () => {
  const cols = 8;
  const fit = new PredictorFit(cols);
  fit.add(lowRankFrame(50, cols, 1), 50);
  // built but not registered: this process does not hold it
  const set = parseCoefficientSet(buildCoefficientSet(cols, [fit.solve(SLOT)]).bytes);
  const t = { dtype: "f32" as const, shape: [50, cols], data: lowRankFrame(50, cols, 2) };
  const bytes = encode(t, { codec: "kvsort", predictor: "cross", coefficients: set, ...SLOT });
  const e = assertThrows(() => decode(bytes), UnknownCoefficientsError);
  assert(e instanceof CorruptStreamError);
  registerCoefficientSet(set);
  assertEquals(toFloat32(decode(bytes)).length, 50 * cols);
});

Deno.test("encode() refuses the cross predictor without coefficients for the frame", () => {
  const t = { dtype: "f32" as const, shape: [10, 8], data: lowRankFrame(10, 8, 2) };
  assertThrows(() => encode(t, { codec: "kvsort", predictor: "cross" }), RangeError, "coefficients");
  const set = calibrated(8, 40);
  assertThrows(
    () => encode(t, { codec: "kvsort", predictor: "cross", coefficients: set, ...SLOT, layer: 9 }),
    RangeError,
  );
});

Deno.test("parseCoefficientSet() rejects foreign, truncated and trailing bytes; round-trips its own", () => {
  const set = calibrated(8, 60);
  assertEquals(parseCoefficientSet(set.bytes).hash, set.hash);
  assertThrows(() => parseCoefficientSet(new Uint8Array([1, 2, 3, 4, 5])), CorruptStreamError, "magic");
  for (const cut of [5, 9, 20, set.bytes.length - 1]) {
    assertThrows(() => parseCoefficientSet(set.bytes.subarray(0, cut)), CorruptStreamError);
  }
  assertThrows(() => parseCoefficientSet(new Uint8Array([...set.bytes, 0])), CorruptStreamError, "stray");
});
