import { assert, assertEquals, assertInstanceOf, assertThrows } from "@std/assert";
import { decode, decodeWithInfo, encode, inspect } from "./mod.ts";
import type { CodecName, EncodeOptions, Tensor } from "./mod.ts";
import { type Dtype, toFloat32 } from "../dtype/mod.ts";
import { kvFrame, rng } from "./testdata/gen.ts";
import { readNpy } from "../npy/mod.ts";
import { KV_SAMPLES_DIR } from "../../tests/_harness/paths.ts";
import { assertBound, bitsOf } from "./_testing.ts";

Deno.test("encode() keeps every value within the bound over random shapes, dtypes, eb, k and specials", () => {
  const r = rng(42);
  const dtypes: Dtype[] = ["f32", "f16", "bf16"];
  const preds: NonNullable<EncodeOptions["predictor"]>[] = ["prev", "lorenzo2d", "qfirst", "auto", "token"];
  for (let trial = 0; trial < 600; trial++) {
    const rows = Math.floor(r() * 40), cols = [1, 3, 8, 17, 64, 128][Math.floor(r() * 6)];
    const dtype = dtypes[trial % 3];
    const t = kvFrame(rows, cols, dtype, trial, r() < 0.5);
    const opts: EncodeOptions = {
      codec: r() < 0.75 ? "kvsort" : "sz",
      errorBound: 10 ** (-4 + 3.5 * r()),
      mode: r() < 0.5 ? "abs" : "rel",
      indexShare: r() < 0.2 ? "auto" : 1 + Math.floor(r() * 12),
      predictor: preds[Math.floor(r() * preds.length)],
      lossless: r() < 0.5 ? "auto" : "none",
    };
    const ctx = `trial ${trial} ${dtype} [${rows},${cols}] ${JSON.stringify(opts)}`;
    let dec;
    try {
      dec = decodeWithInfo(encode(t, opts));
    } catch (e) {
      throw new Error(`${ctx}: ${e}`);
    }
    const { tensor, info } = dec;
    assert(info.eb !== undefined, ctx);
    assertBound(t, tensor, info.eb, ctx);
  }
});

Deno.test("encode() with eb 0 stores everything exactly", () => {
  const t = kvFrame(8, 16, "f16", 3, true);
  const back = decode(encode(t, { codec: "kvsort", errorBound: 0, mode: "abs" }));
  assertEquals(back.data, t.data);
});

Deno.test("encode() round-trips raw and zstd bit-exactly and KIVI with specials exact", () => {
  for (const dtype of ["f32", "f16", "bf16"] as Dtype[]) {
    const t = kvFrame(37, 24, dtype, 9, true);
    for (const codec of ["raw", "zstd"] as CodecName[]) {
      assertEquals(decode(encode(t, { codec })).data, t.data);
    }
    for (const codec of ["kivi8", "kivi4", "kivi2"] as CodecName[]) {
      for (const role of ["key", "value"] as const) {
        const back = decode(encode(t, { codec, role }));
        const x = toFloat32(t), y = toFloat32(back);
        for (let i = 0; i < x.length; i++) {
          if (!Number.isFinite(x[i])) assertEquals(bitsOf(back)[i], bitsOf(t)[i]);
        }
        if (codec === "kivi8") {
          const finite = x.filter(Number.isFinite).filter((v) => Math.abs(v) < 100);
          assert(
            finite.length > 0 && y.some((v, i) => Math.abs(v - x[i]) < 0.05),
            `${codec} ${role} ${dtype}`,
          );
        }
      }
    }
  }
});

Deno.test("encode() on a real KV sample: kvsort beats KIVI-4 on size at 1e-2 rel and keeps the bound", () => {
  const k = readNpy(Deno.readFileSync(`${KV_SAMPLES_DIR}/stories260K/sample-01.k.npy`));
  const frame: Tensor = { dtype: "f32", shape: [512, 8], data: (k.data as Float32Array).subarray(0, 4096) };
  for (const indexShare of [1, 8, "auto"] as const) {
    const bytes = encode(frame, {
      codec: "kvsort",
      errorBound: 1e-2,
      mode: "rel",
      indexShare,
      predictor: "qfirst",
    });
    const { tensor, info } = decodeWithInfo(bytes);
    assertBound(frame, tensor, info.eb!, `k=${indexShare}`);
    if (indexShare !== "auto") assertEquals(info.k, indexShare);
    else assert(info.k! >= 1);
  }
  // the default (adaptive) predictor: whatever it picks keeps the bound
  for (const indexShare of [1, 8, "auto"] as const) {
    const bytes = encode(frame, {
      codec: "kvsort",
      errorBound: 1e-2,
      mode: "rel",
      indexShare,
      predictor: "auto",
    });
    const { tensor, info } = decodeWithInfo(bytes);
    assertBound(frame, tensor, info.eb!, `adaptive k=${indexShare}`);
    assert(
      info.k === 0 || indexShare === "auto" || info.k === indexShare,
      `adaptive k=${indexShare}: ${info.k}`,
    );
  }
  const sz = encode(frame, { codec: "sz", errorBound: 1e-2, mode: "rel" });
  assertEquals(inspect(sz).k, 0);
});

Deno.test("encode() rejects bad options and malformed tensors", () => {
  const t = kvFrame(4, 4, "f32", 1);
  assertThrows(() => encode(t, { codec: "kvsort", errorBound: -1 }), RangeError);
  assertThrows(() => encode(t, { codec: "kvsort", indexShare: 0 }), RangeError);
  assertThrows(() => encode(t, { codec: "nope" as CodecName }), RangeError);
  assertThrows(
    () => encode({ dtype: "f16", shape: [4], data: new Float32Array(4) }, { codec: "raw" }),
    TypeError,
  );
});

Deno.test("encode() is deterministic: the same input gives the same bytes", () => {
  const t = kvFrame(64, 32, "f16", 5, true);
  const opts: EncodeOptions = { codec: "kvsort", errorBound: 1e-3, indexShare: "auto" };
  assertEquals(encode(t, opts), encode(t, opts));
});

Deno.test("decode() of an empty tensor works for every codec", () => {
  for (const codec of ["kvsort", "sz", "fast", "fp16", "raw", "zstd", "kivi4"] as CodecName[]) {
    const t: Tensor = { dtype: "f32", shape: [0, 8], data: new Float32Array(0) };
    const back = decode(encode(t, { codec }));
    assertEquals(back.shape, [0, 8]);
    assertInstanceOf(back.data, Float32Array);
  }
});
