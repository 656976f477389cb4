import { assert, assertAlmostEquals } from "@std/assert";
import { attentionMetric } from "./attention_metric.ts";
import { lcg } from "./_testing.ts";

Deno.test("attentionMetric() sums squared softmax over queries and each GQA group", () => {
  const rnd = lcg(9);
  const shape = { nHeads: 4, nKvHeads: 2, nPos: 6, headDim: 3 };
  const w = 2;
  const q = Float32Array.from({ length: 4 * w * 3 }, () => rnd() - 0.5);
  const k = Float32Array.from({ length: 2 * 6 * 3 }, () => rnd() - 0.5);
  const m = attentionMetric(q, k, shape);
  // Independent check for KV head 1 (query heads 2 and 3), position 5: only the last query sees it.
  let expected = 0;
  for (const qh of [2, 3]) {
    const s = [0, 1, 2, 3, 4, 5].map((p) => {
      let d = 0;
      for (let j = 0; j < 3; j++) d += q[(qh * w + 1) * 3 + j] * k[(6 + p) * 3 + j];
      return Math.exp(d / Math.sqrt(3));
    });
    const a = s[5] / s.reduce((x, y) => x + y);
    expected += a * a;
  }
  assertAlmostEquals(m[6 + 5], expected, 1e-6);
  // Each query's squared probabilities sum to at most 1, so a KV head totals at most group * w.
  for (let h = 0; h < 2; h++) {
    const total = m.subarray(h * 6, h * 6 + 6).reduce((x, y) => x + y);
    assert(total > 0 && total <= 4 + 1e-6);
  }
});
