import { assertAlmostEquals, assertEquals } from "@std/assert";
import { type FrameStatsRow, spread, summarize } from "./summary.ts";
import { frameStats } from "./frame_stats.ts";
import { frameOf } from "./_synthetic.ts";

Deno.test("spread() leaves undefined values out and says how many it kept", () => {
  assertEquals(spread([1, null, NaN, 3]), { mean: 2, min: 1, max: 3, n: 2 });
  assertEquals(spread([null]), { mean: null, min: null, max: null, n: 0 });
});

Deno.test("summarize() gives each kind a row per layer, then one over every layer", () => {
  const stats = frameStats(frameOf(64, 8, (t, c) => c + (t % 3)));
  const row = (kind: "K" | "V", layer: number, head: number, share: number): FrameStatsRow => ({
    ...stats,
    outlier_energy_share: share,
    kind,
    sample: "s",
    layer,
    head,
  });
  const rows = [row("K", 1, 0, 0.1), row("K", 0, 0, 0.2), row("K", 0, 1, 0.4), row("V", 0, 0, 0.5)];
  const s = summarize(rows);
  assertEquals(s.map((r) => [r.kind, r.layer, r.frames]), [["K", 0, 2], ["K", 1, 1], ["K", null, 3], [
    "V",
    0,
    1,
  ], ["V", null, 1]]);
  const all = s[2].stats.outlier_energy_share;
  assertEquals([all.min, all.max, all.n], [0.1, 0.4, 3]);
  assertAlmostEquals(s[0].stats.rank_corr_adjacent.mean!, 1, 1e-12);
});
