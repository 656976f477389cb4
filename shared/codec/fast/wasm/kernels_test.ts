import { assert, assertEquals, assertInstanceOf } from "@std/assert";
import { decode, encode } from "../../mod.ts";
import type { EncodeOptions, Tensor } from "../../mod.ts";
import { CorruptStreamError } from "../../errors.ts";
import { assertBound } from "../../_testing.ts";
import { rng } from "../../testdata/gen.ts";
import { fastDecode, fastEncode } from "../mod.ts";
import type { FastParams } from "../mod.ts";
import { fastKernels, setFastWasm } from "./mod.ts";

const haveWasm = fastKernels() !== null;

/** A KV-like f32 frame; `specials` salts it with NaN, ±Inf, -0, subnormals and, sometimes, a huge value. */
function frame(r: () => number, rows: number, cols: number, specials: boolean): Float32Array {
  const off = Float32Array.from({ length: cols }, () => (r() - 0.5) * 4);
  const scale = Float32Array.from({ length: cols }, () => 0.2 + r() * (r() < 0.1 ? 8 : 1));
  const x = new Float32Array(rows * cols);
  const smooth = r() < 0.5;
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const drift = smooth ? Math.sin(i * 0.05 + j) * 0.5 : 0;
      x[i * cols + j] = off[j] + scale[j] * (drift + (r() - 0.5) * (smooth ? 0.1 : 1));
    }
  }
  if (specials && x.length > 0) {
    const pool = [NaN, Infinity, -Infinity, -0, 0, 1e-40, -3e-39];
    for (let s = 0; s < 1 + (x.length >> 6); s++) x[Math.floor(r() * x.length)] = pool[s % pool.length];
    // a huge value makes the encoder check each value (the JS loops); 1e37, not 3e38: a rel bound
    // near 1 over a range near fp32's largest gives a step past fp32, a body no decoder takes
    if (r() < 0.2) x[Math.floor(r() * x.length)] = (r() < 0.5 ? -1 : 1) * 1e37;
  }
  return x;
}

const bitsOf = (a: Float32Array | Uint16Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/**
 * Runs `f` and gives its values' bytes (checking which loops ran), or the message of the
 * CorruptStreamError it threw.
 */
function outcome(
  f: () => { out: Float32Array | Uint16Array; kernels: string },
  kernels: string,
): Uint8Array | string {
  try {
    const d = f();
    assertEquals(d.kernels, kernels);
    return bitsOf(d.out);
  } catch (err) {
    assertInstanceOf(err, CorruptStreamError);
    return `${err.message} @${err.offset}`;
  }
}

Deno.test({
  name: "fastEncode() gives the same bytes with the WebAssembly kernels as with the JS loops",
  ignore: !haveWasm,
  fn() {
    const r = rng(4242);
    let wasm = 0;
    for (let trial = 0; trial < 1500; trial++) {
      const rows = trial < 40 ? trial : Math.floor(r() * 301), cols = 1 + Math.floor(r() * 256);
      const x = frame(r, rows, cols, r() < 0.4);
      const p: FastParams = {
        errorBound: 10 ** (-6 + 6 * r()),
        mode: r() < 0.5 ? "abs" : "rel",
        predictor: (["auto", "none", "delta"] as const)[trial % 3],
      };
      const f = { x, bits: new Uint32Array(x.buffer), dtype: "f32" as const, rows, cols };
      const js = fastEncode(f, { ...p, kernels: "js" }), w = fastEncode(f, p);
      const ctx = `trial ${trial} [${rows},${cols}] ${JSON.stringify(p)}`;
      assertEquals(js.kernels, "js", ctx);
      if (w.kernels === "wasm") wasm++;
      assertEquals(w.predictor, js.predictor, ctx);
      assertEquals(w.exceptions, js.exceptions, ctx);
      assertEquals(w.body, js.body, ctx);
    }
    assert(wasm > 1000, `only ${wasm} frames took the WebAssembly kernels`);
  },
});

Deno.test({
  name: "fastEncode() with the WebAssembly kernels keeps every value within the bound, specials exact",
  ignore: !haveWasm,
  fn() {
    const r = rng(99);
    for (let trial = 0; trial < 300; trial++) {
      const rows = Math.floor(r() * 301), cols = 1 + Math.floor(r() * 256);
      const t: Tensor = { dtype: "f32", shape: [rows, cols], data: frame(r, rows, cols, r() < 0.5) };
      const opts: EncodeOptions = {
        codec: "fast",
        errorBound: 10 ** (-6 + 6 * r()),
        mode: r() < 0.5 ? "abs" : "rel",
        fastPredictor: (["auto", "none", "delta"] as const)[trial % 3],
      };
      const stream = encode(t, opts);
      const ctx = `trial ${trial} [${rows},${cols}] ${JSON.stringify(opts)}`;
      const eb = fastEncode(
        { x: t.data as Float32Array, bits: new Uint32Array(t.data.buffer), dtype: "f32", rows, cols },
        { errorBound: opts.errorBound!, mode: opts.mode!, predictor: opts.fastPredictor },
      ).eb;
      assertBound(t, decode(stream), eb, ctx, { signedZero: false });
    }
  },
});

Deno.test({
  name:
    "fastDecode() gives the same values and the same errors with the WebAssembly kernels, corrupt bodies included",
  ignore: !haveWasm,
  fn() {
    const r = rng(7);
    let decoded = 0, corrupt = 0;
    for (let trial = 0; trial < 600; trial++) {
      const rows = Math.floor(r() * 150), cols = 1 + Math.floor(r() * 70);
      const x = frame(r, rows, cols, r() < 0.4);
      // tiny bounds make wide codes, so flipped bits reach |q| past 2^24 (JS's exact route)
      const errorBound = r() < 0.3 ? 1e-7 : 10 ** (-5 + 5 * r());
      const f = { x, bits: new Uint32Array(x.buffer), dtype: "f32" as const, rows, cols };
      const body = fastEncode(f, {
        errorBound,
        mode: r() < 0.5 ? "abs" : "rel",
        predictor: (["auto", "none", "delta"] as const)[trial % 3],
      }).body;
      for (let m = 0; m < 6; m++) {
        const b = m === 5 ? body.subarray(0, Math.floor(r() * body.length)) : body.slice();
        if (m > 0 && m < 5) {
          for (let k = 0; k < 1 + Math.floor(r() * 3); k++) {
            // payload and widths mostly; the header now and then
            const bit = m === 4 ? Math.floor(r() * 44 * 8) : Math.floor(r() * b.length * 8);
            b[bit >> 3] ^= 1 << (bit & 7);
          }
        }
        const js = outcome(() => fastDecode(b, "f32", rows, cols, 100, "js"), "js");
        const w = outcome(() => fastDecode(b, "f32", rows, cols, 100), rows * cols > 0 ? "wasm" : "js");
        assertEquals(w, js, `trial ${trial} mutation ${m} [${rows},${cols}]`);
        if (typeof w === "string") corrupt++;
        else if (rows * cols > 0) decoded++;
      }
    }
    assert(decoded > 1000 && corrupt > 200, `${decoded} decoded, ${corrupt} rejected`);
  },
});

Deno.test({
  name: "fastDecode() follows JS's f64 route where a corrupt body gives |q| past 2^24",
  ignore: !haveWasm,
  fn() {
    // one full delta block of width 31: every code 2^31 - 1, so q falls by 2^30 a row
    const rows = 32, cols = 1;
    const body = new Uint8Array(44 + 4 + 4 * 31);
    const dv = new DataView(body.buffer);
    body[0] = 0x46, body[1] = 1, body[2] = 0;
    dv.setFloat64(4, 1e-3, true), dv.setFloat64(12, 1e-3, true), dv.setFloat64(20, Math.fround(1.5e-3), true);
    dv.setUint32(40, 31, true);
    body[44] = 31;
    body.fill(0xff, 48);
    const js = fastDecode(body, "f32", rows, cols, 0, "js"),
      w = fastDecode(body, "f32", rows, cols, 0);
    assertEquals(w.kernels, "wasm");
    assertEquals(bitsOf(w.out), bitsOf(js.out));
    assert(Math.abs((js.out[5] as number) / Math.fround(1.5e-3)) > 2 ** 24);
  },
});

Deno.test({
  name: "fastDecode() does not grow the kernels' memory for the shape a corrupt body claims",
  ignore: !haveWasm,
  fn() {
    // 2^21 values claimed (8 MiB of output), 64 KiB of widths, an outlier count they do not flag
    const rows = 65536, cols = 32, blocks = 2048 * 32;
    const body = new Uint8Array(44 + blocks);
    const dv = new DataView(body.buffer);
    body[0] = 0x46;
    dv.setFloat64(4, 1e-3, true), dv.setFloat64(12, 1e-3, true), dv.setFloat64(20, Math.fround(1.5e-3), true);
    dv.setUint32(28, 1, true);
    const before = fastKernels()!.memoryBytes;
    let err: unknown;
    try {
      fastDecode(body, "f32", rows, cols, 0);
    } catch (e) {
      err = e;
    }
    assertInstanceOf(err, CorruptStreamError);
    assert(fastKernels()!.memoryBytes <= Math.max(before, 1 << 20), `grew to ${fastKernels()!.memoryBytes}`);
  },
});

Deno.test("encode({ codec: 'fast' }) gives the same stream with the WebAssembly kernels off", () => {
  const r = rng(3);
  for (let trial = 0; trial < 40; trial++) {
    const rows = 1 + Math.floor(r() * 200), cols = 1 + Math.floor(r() * 130);
    const t: Tensor = { dtype: "f32", shape: [rows, cols], data: frame(r, rows, cols, trial % 2 === 0) };
    const opts: EncodeOptions = { codec: "fast", errorBound: 1e-2, mode: "rel" };
    const on = encode(t, opts);
    const was = setFastWasm(false);
    let off: Uint8Array;
    try {
      off = encode(t, opts);
      assertEquals(bitsOf(decode(on).data), bitsOf(decode(off).data));
    } finally {
      setFastWasm(was);
    }
    assertEquals(on, off, `trial ${trial}`);
  }
});
