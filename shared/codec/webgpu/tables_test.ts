import { assertEquals } from "@std/assert";
import { LinearQuantizer } from "../quantize/linear.ts";
import { keyValue, orderedKey, quantTables } from "./tables.ts";
import { rng } from "../testdata/gen.ts";

const f = new Float32Array(1);
const u = new Uint32Array(f.buffer);

/** The CPU quantizer's two decisions for v, against the thresholds of the table. */
function check(eb: number, dtype: "f32" | "f16", values: number[]): void {
  const q = new LinearQuantizer(eb, dtype);
  let lo = Infinity, hi = -Infinity;
  for (const v of values) (lo = Math.min(lo, v)), (hi = Math.max(hi, v));
  const tab = quantTables(q, dtype, { min: lo, max: hi })!;
  const { size, words, bins } = tab;
  for (const v of values) {
    f[0] = v;
    const key = orderedKey(u[0]);
    const qd = Math.round(f[0] * q.inv) + 0;
    let t = 0;
    while (t < size && words[t + 1] <= key) t++;
    assertEquals(tab.lo + t, qd, `bin of ${f[0]} at eb ${eb}`);
    const pass = Math.abs(bins.value[t] - f[0]) <= q.eb;
    assertEquals(key >= words[size + 1 + t] && key <= words[2 * size + 1 + t], pass, `bound of ${f[0]}`);
  }
}

Deno.test("quantTables() thresholds reproduce the CPU quantizer's bin and bound decisions", () => {
  const r = rng(3);
  for (const eb of [0.1, 0.01, 1e-3, 0.0123, 1 / 3]) {
    const vals: number[] = [];
    for (let i = 0; i < 3000; i++) vals.push((r() - 0.5) * 6);
    // values right at bin edges and bound edges, where rounding decides
    for (let m = -20; m <= 20; m++) {
      for (const d of [-1e-7, 0, 1e-7]) {
        vals.push((m + 0.5) * 2 * eb + d, m * 2 * eb + eb + d, m * 2 * eb - eb + d);
      }
    }
    vals.push(0, -0, 0.25, -0.25, 0.75);
    check(eb, "f32", vals);
    check(eb, "f16", vals.map((v) => Math.max(-60000, Math.min(60000, v))));
  }
});

Deno.test("orderedKey() orders fp32 bit patterns numerically and keyValue() inverts it", () => {
  const vals = [-3e38, -1, -1e-40, -0, 0, 1e-40, 1, 3e38];
  const keys = vals.map((v) => {
    f[0] = v;
    return orderedKey(u[0]);
  });
  for (let i = 1; i < keys.length; i++) assertEquals(keys[i] > keys[i - 1], true);
  for (let i = 0; i < vals.length; i++) {
    assertEquals(Object.is(keyValue(keys[i]), Math.fround(vals[i])), true);
  }
});
