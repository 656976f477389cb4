import { assertEquals, assertInstanceOf, assertRejects, assertThrows } from "@std/assert";
import { STORIES260K } from "../../tests/_harness/paths.ts";
import { KvrelayError } from "../errors.ts";
import { CheckpointFormatError, Model, parseLlama2cCheckpoint } from "./mod.ts";
import { interleavedToRotateHalf } from "./rope.ts";

const bytes = await Deno.readFile(STORIES260K.model);

Deno.test("parseLlama2cCheckpoint() reads the stories260K header and shared classifier", () => {
  const { config, weights } = parseLlama2cCheckpoint(bytes);
  assertEquals(
    [
      config.dim,
      config.hiddenDim,
      config.nLayers,
      config.nHeads,
      config.nKvHeads,
      config.vocabSize,
      config.maxSeqLen,
    ],
    [64, 172, 5, 8, 4, 512, 512],
  );
  assertEquals(config.headDim, 8);
  assertEquals(weights.classifier, undefined);
  assertEquals(weights.layers[4].w3.length, 172 * 64);
  // The final RMSNorm sits right before the legacy RoPE tables (seq_len * head_dim floats).
  const finalOffset = bytes.byteLength - 4 * (512 * 8 + 64);
  assertEquals(weights.finalNorm[0], new DataView(bytes.buffer).getFloat32(finalOffset, true));
});

Deno.test("parseLlama2cCheckpoint() rejects corrupt headers and sizes with a typed error", () => {
  const cases: [string, (b: Uint8Array) => Uint8Array][] = [
    ["short", (b) => b.subarray(0, 20)],
    ["truncated", (b) => b.subarray(0, b.byteLength - 4)],
    ["zero heads", (b) => set(b, 3, 0)],
    ["heads not a multiple of kv heads", (b) => set(b, 4, 3)],
    ["huge dim", (b) => set(b, 0, 0x7fffffff)],
    ["negative vocab without classifier", (b) => set(b, 5, -512)],
  ];
  for (const [what, mutate] of cases) {
    const err = assertThrows(
      () => parseLlama2cCheckpoint(mutate(bytes.slice())),
      CheckpointFormatError,
      undefined,
      what,
    );
    assertInstanceOf(err, KvrelayError);
    assertEquals(err.code, "bad_request");
  }
  function set(b: Uint8Array, field: number, v: number): Uint8Array {
    new DataView(b.buffer).setInt32(field * 4, v, true);
    return b;
  }
});

Deno.test("Model.load() reports a missing checkpoint or tokenizer as bad_request", async () => {
  for (const opts of [{ modelPath: "/nonexistent/model.bin" }, { modelPath: STORIES260K.model }]) {
    const err = await assertRejects(() => Model.load(opts), KvrelayError);
    assertEquals(err.code, "bad_request");
  }
});

Deno.test("interleavedToRotateHalf() moves pair rows (2j, 2j+1) to (j, j + hd/2)", () => {
  const w = Float32Array.from({ length: 2 * 4 }, (_, i) => i); // 2 heads of hd 4, inDim 1
  assertEquals([...interleavedToRotateHalf(w, 2, { headDim: 4, inDim: 1 })], [0, 2, 1, 3, 4, 6, 5, 7]);
});
