import { assertAlmostEquals, assertEquals } from "@std/assert";
import { Histogram, Registry } from "prom-client";
import { distribution, histogramBuckets, parseExposition, quantile, sumOf, waterfall } from "./view.js";

Deno.test("parseExposition() reads prom-client's text, labels and +Inf included", async () => {
  const registry = new Registry();
  const h = new Histogram({
    name: "x_ms",
    help: "h",
    buckets: [1, 10],
    labelNames: ["codec"],
    registers: [registry],
  });
  h.observe({ codec: 'a"b' }, 5);
  h.observe({ codec: "c" }, 50);
  const samples = parseExposition(await registry.metrics());
  assertEquals(sumOf(samples, "x_ms_count"), 2);
  assertEquals(sumOf(samples, "x_ms_sum", (l) => l.codec === 'a"b'), 5);
  assertEquals(histogramBuckets(samples, "x_ms"), [
    { le: 1, count: 0 },
    { le: 10, count: 1 },
    { le: Infinity, count: 2 },
  ]);
});

Deno.test("quantile() interpolates within the bucket like histogram_quantile", () => {
  const b = [{ le: 10, count: 4 }, { le: 20, count: 8 }, { le: Infinity, count: 8 }];
  assertAlmostEquals(quantile(b, 0.5), 10);
  assertAlmostEquals(quantile(b, 0.75), 15);
  assertAlmostEquals(quantile(b, 0.25), 5);
  assertEquals(quantile([{ le: 1, count: 0 }, { le: Infinity, count: 0 }], 0.5), NaN);
  assertEquals(
    quantile([{ le: 1, count: 0 }, { le: Infinity, count: 3 }], 0.9),
    1,
    "+Inf: the highest bound",
  );
});

Deno.test("distribution() turns cumulative buckets into per-bucket counts", () => {
  assertEquals(distribution([{ le: 1, count: 2 }, { le: 4, count: 5 }, { le: Infinity, count: 6 }]), [
    { from: 0, to: 1, count: 2 },
    { from: 1, to: 4, count: 3 },
    { from: 4, to: Infinity, count: 1 },
  ]);
});

Deno.test("waterfall() orders spans parent first, siblings by start, with offsets", () => {
  const span = (spanId: string, parentSpanId: string | undefined, startMs: number, endMs: number) => ({
    spanId,
    parentSpanId,
    name: spanId,
    service: "s",
    startTimeUnixNano: String(BigInt(startMs) * 1_000_000n + 1_700_000_000_000_000_000n),
    endTimeUnixNano: String(BigInt(endMs) * 1_000_000n + 1_700_000_000_000_000_000n),
    durationMs: endMs - startMs,
  });
  const w = waterfall([
    span("c2", "r", 30, 40),
    span("r", undefined, 0, 100),
    span("c1", "r", 10, 20),
    span("g", "c1", 12, 14),
    span("orphan", "gone", 50, 60),
  ]);
  assertEquals(w.rows.map((r) => [r.span.name, r.depth, r.offsetMs]), [
    ["r", 0, 0],
    ["c1", 1, 10],
    ["g", 2, 12],
    ["c2", 1, 30],
    ["orphan", 0, 50],
  ]);
  assertEquals(w.totalMs, 100);
  assertEquals(waterfall([]), { rows: [], totalMs: 0 });
});
