import { assert, assertEquals, assertThrows } from "@std/assert";
import { declaredQuantization, INT8_ROWS_METHOD, quantizeRows, widenRows } from "./int8_weights.ts";

Deno.test("quantizeRows() keeps every value within half a step of its row's scale", () => {
  // rows whose ranges differ by 1e4: one scale per row keeps the small row's precision
  const rows = 3, cols = 64;
  const w = new Float32Array(rows * cols);
  for (let i = 0; i < w.length; i++) w[i] = Math.sin(i * 0.7) * (i < cols ? 1e-3 : i < 2 * cols ? 10 : 0.5);
  const m = quantizeRows(w, rows, cols);
  const back = widenRows(m, rows, cols);
  for (let r = 0; r < rows; r++) {
    const row = w.subarray(r * cols, (r + 1) * cols);
    assertEquals(m.scale[r], Math.fround(Math.max(...row.map(Math.abs)) / 127));
    for (let c = 0; c < cols; c++) {
      const i = r * cols + c;
      assert(Math.abs(back[i] - w[i]) <= m.scale[r] / 2 * (1 + 1e-6), `row ${r} col ${c}`);
    }
  }
  assertEquals(Math.max(...m.q.map(Math.abs)), 127);
});

Deno.test("quantizeRows() gives an all-zero row scale 0 and refuses non-finite values", () => {
  const m = quantizeRows(new Float32Array([0, 0, 1, -2]), 2, 2);
  assertEquals([...m.scale], [0, Math.fround(2 / 127)]);
  assertEquals([...widenRows(m, 2, 2)].slice(0, 2), [0, 0]);
  assertThrows(() => quantizeRows(new Float32Array([1, NaN]), 1, 2), RangeError, "row 0");
  assertThrows(() => quantizeRows(new Float32Array([Infinity, 0]), 1, 2), RangeError);
  assertThrows(() => quantizeRows(new Float32Array(3), 2, 2), RangeError);
  assertThrows(() => widenRows(m, 1, 4), RangeError);
});

Deno.test("declaredQuantization() knows its own method and refuses any other", () => {
  assertEquals(declaredQuantization({}), "none");
  assertEquals(declaredQuantization({ quantization_config: null }), "none");
  assertEquals(
    declaredQuantization({ quantization_config: { quant_method: INT8_ROWS_METHOD } }),
    INT8_ROWS_METHOD,
  );
  assertThrows(
    () => declaredQuantization({ quantization_config: { quant_method: "gptq", bits: 4 } }),
    Error,
    "gptq",
  );
  assertThrows(() => declaredQuantization({ quantization_config: "int8" }), Error);
  const ours = { quant_method: INT8_ROWS_METHOD, bits: 8, group: "row" };
  assertEquals(declaredQuantization({ quantization_config: ours }), INT8_ROWS_METHOD);
  assertThrows(() => declaredQuantization({ quantization_config: { ...ours, bits: 4 } }), Error, "bits");
  assertThrows(() => declaredQuantization({ quantization_config: { ...ours, group: 128 } }), Error, "group");
  assertThrows(
    () => declaredQuantization({ quantization_config: { ...ours, zero_point: true } }),
    Error,
    "zero_point",
  );
});
