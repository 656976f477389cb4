/**
 * Golden byte replay: these streams must not change without a FORMAT_VERSION bump. The
 * inputs are generated deterministically here; zstd is left out (`lossless: "none"`, no
 * zstd codec) so the fixtures do not depend on the zstd library's version.
 */
import { assertEquals } from "@std/assert";
import { createHash } from "node:crypto";
import { decode, encode, type EncodeOptions, FORMAT_VERSION } from "./mod.ts";
import { kvFrame } from "./testdata/gen.ts";
import { toFloat32 } from "../dtype/mod.ts";
import { PredictorFit } from "./predict/calibrate.ts";
import { buildCoefficientSet, registerCoefficientSet } from "./predict/coefficients.ts";

const CASES: [string, () => Uint8Array, string][] = [
  [
    "kvsort f16 k=4 qfirst",
    () => enc("f16", { codec: "kvsort", errorBound: 1e-2, indexShare: 4, predictor: "qfirst" }),
    "57cc2cece5624369d64db8021a691fb9bf45cf2eec47149f7bdaebc9944e2419",
  ],
  [
    "kvsort f32 k=1 prev abs",
    () => enc("f32", { codec: "kvsort", errorBound: 1e-3, mode: "abs", indexShare: 1, predictor: "prev" }),
    "c6140cea14d85043fec6117f497fe4ae0df8b6d96b1a0b93af1c282400ba1ba0",
  ],
  [
    "kvsort bf16 auto lorenzo2d",
    () => enc("bf16", { codec: "kvsort", errorBound: 4e-3, indexShare: "auto", predictor: "lorenzo2d" }),
    "736b2e1834495c0254a46251d999fe7328cf87221ea913d40a4618c0b7b3dff7",
  ],
  [
    "sz f32",
    () => enc("f32", { codec: "sz", errorBound: 1e-2, predictor: "qfirst" }),
    "96f3364976300c00eff7ac8dcff4e7d5aa75b024eb0a206b4779a821aaf50f23",
  ],
  [
    "kvsort f16 token",
    () => enc("f16", { codec: "kvsort", errorBound: 1e-2, predictor: "token" }),
    "f403c969a62b902ce85a1dce2ed0205bdb2f30433ae076f471d5065c97f9db2c",
  ],
  [
    "kvsort f32 cross",
    () =>
      enc("f32", {
        codec: "kvsort",
        errorBound: 1e-2,
        predictor: "cross",
        coefficients: SET,
        role: "value",
        layer: 3,
        head: 1,
      }),
    "6ef51fcdbc601ec433b2cb4f3ee710c7694433eec780a58bfa5bf23eaf0295f1",
  ],
  [
    "kivi4 value",
    () => enc("f16", { codec: "kivi4", role: "value" }),
    "585b2248efbfa48f61d10006ce02f61d9ffde969a7a1b75119a8d56f766b0ca6",
  ],
  [
    "kivi2 key",
    () => enc("f32", { codec: "kivi2", role: "key" }),
    "472387fe1994202103581c0a7acb9d5e8a7b7c75f029b7a100b1c54b32659320",
  ],
  [
    "raw bf16",
    () => enc("bf16", { codec: "raw" }),
    "ad0c901b288052047e34004514de136cfe3e8301f49aae01ae26e1ee3b684fde",
  ],
];

/** A coefficient set calibrated on generated frames: deterministic, like the inputs. */
const SET = (() => {
  const fit = new PredictorFit(32);
  for (const seed of [1, 2]) fit.add(toFloat32(kvFrame(48, 32, "f32", seed)), 48);
  return registerCoefficientSet(buildCoefficientSet(32, [fit.solve({ role: "value", layer: 3, head: 1 })]));
})();

function enc(dtype: "f32" | "f16" | "bf16", opts: EncodeOptions): Uint8Array {
  return encode(kvFrame(48, 32, dtype, 2024, true), { lossless: "none", ...opts });
}

Deno.test("encode() reproduces the golden streams byte for byte (format version 1)", () => {
  assertEquals(FORMAT_VERSION, 1);
  const got = CASES.map(([name, make]) => {
    const bytes = make();
    decode(bytes);
    return [name, createHash("sha256").update(bytes).digest("hex")];
  });
  assertEquals(got, CASES.map(([name, , hash]) => [name, hash]));
});
