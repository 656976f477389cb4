// @ts-check
/**
 * The dashboard's arithmetic, with no DOM: parse Prometheus text, sum series, estimate
 * quantiles from histogram buckets (as PromQL's `histogram_quantile` does), turn cumulative
 * buckets into per-bucket counts, and lay a trace's spans out as waterfall rows. The browser
 * loads this file as it is (GET /dashboard/view.js); Deno tests import the same file.
 * @module
 */

/**
 * @typedef {{ name: string, labels: Record<string, string>, value: number }} Sample
 * @typedef {{ le: number, count: number }} Bucket
 */

/**
 * The samples of a Prometheus text exposition (comments skipped).
 * @param {string} text
 * @returns {Sample[]}
 */
export function parseExposition(text) {
  /** @type {Sample[]} */
  const out = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    /** @type {Record<string, string>} */
    const labels = {};
    const body = m[3] ?? "";
    for (const l of body.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1]] = l[2].replace(/\\n/g, "\n").replace(/\\"/g, '"').replace(/\\\\/g, "\\");
    }
    out.push({ name: m[1], labels, value: parseValue(m[4]) });
  }
  return out;
}

/** @param {string} s */
function parseValue(s) {
  if (s === "+Inf") return Infinity;
  if (s === "-Inf") return -Infinity;
  return Number(s);
}

/**
 * The sum of the series `name` whose labels pass `where`.
 * @param {Sample[]} samples
 * @param {string} name
 * @param {(labels: Record<string, string>) => boolean} [where]
 */
export function sumOf(samples, name, where = () => true) {
  let total = 0;
  for (const s of samples) if (s.name === name && where(s.labels)) total += s.value;
  return total;
}

/**
 * The cumulative buckets of histogram `name`, summed over its other labels, by upper bound.
 * @param {Sample[]} samples
 * @param {string} name
 * @returns {Bucket[]}
 */
export function histogramBuckets(samples, name) {
  /** @type {Map<number, number>} */
  const byLe = new Map();
  for (const s of samples) {
    if (s.name !== `${name}_bucket` || s.labels.le === undefined) continue;
    const le = parseValue(s.labels.le);
    byLe.set(le, (byLe.get(le) ?? 0) + s.value);
  }
  return [...byLe].map(([le, count]) => ({ le, count })).sort((a, b) => a.le - b.le);
}

/**
 * The q-quantile of cumulative buckets, interpolated linearly within the bucket that holds it
 * (PromQL's `histogram_quantile`); NaN when there are no observations. A quantile in the +Inf
 * bucket is the highest finite bound.
 * @param {Bucket[]} buckets
 * @param {number} q
 */
export function quantile(buckets, q) {
  const total = buckets.at(-1)?.count ?? 0;
  if (total === 0) return NaN;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const b of buckets) {
    if (b.count >= rank) {
      if (b.le === Infinity) return prevLe;
      const inBucket = b.count - prevCount;
      return inBucket === 0 ? b.le : prevLe + (b.le - prevLe) * (rank - prevCount) / inBucket;
    }
    prevLe = b.le;
    prevCount = b.count;
  }
  return prevLe;
}

/**
 * Per-bucket counts (not cumulative), each with its range, for a distribution chart.
 * @param {Bucket[]} buckets
 * @returns {{ from: number, to: number, count: number }[]}
 */
export function distribution(buckets) {
  let prevLe = 0;
  let prevCount = 0;
  return buckets.map((b) => {
    const d = { from: prevLe, to: b.le, count: b.count - prevCount };
    prevLe = b.le;
    prevCount = b.count;
    return d;
  });
}

/**
 * @typedef {{ spanId: string, parentSpanId?: string, name: string, service: string,
 *   startTimeUnixNano: string, endTimeUnixNano: string, durationMs: number }} TraceSpan
 * @typedef {{ span: TraceSpan, depth: number, offsetMs: number }} WaterfallRow
 */

/**
 * A trace's spans in tree order (each parent before its children, siblings by start), with
 * depth and start offset from the earliest span. Spans whose parent is not in the trace are
 * roots.
 * @param {TraceSpan[]} spans
 * @returns {{ rows: WaterfallRow[], totalMs: number }}
 */
export function waterfall(spans) {
  if (spans.length === 0) return { rows: [], totalMs: 0 };
  const t0 = spans.map((s) => BigInt(s.startTimeUnixNano)).reduce((a, b) => (a < b ? a : b));
  const t1 = spans.map((s) => BigInt(s.endTimeUnixNano)).reduce((a, b) => (a > b ? a : b));
  const ms = (/** @type {bigint} */ ns) => Number((ns - t0) / 1000n) / 1000;
  const ids = new Set(spans.map((s) => s.spanId));
  /** @type {Map<string, TraceSpan[]>} */
  const children = new Map();
  /** @type {TraceSpan[]} */
  const roots = [];
  for (const s of spans) {
    if (s.parentSpanId && ids.has(s.parentSpanId)) {
      const list = children.get(s.parentSpanId) ?? [];
      list.push(s);
      children.set(s.parentSpanId, list);
    } else roots.push(s);
  }
  const byStart = (/** @type {TraceSpan} */ a, /** @type {TraceSpan} */ b) =>
    BigInt(a.startTimeUnixNano) < BigInt(b.startTimeUnixNano) ? -1 : 1;
  /** @type {WaterfallRow[]} */
  const rows = [];
  const visit = (/** @type {TraceSpan} */ s, /** @type {number} */ depth) => {
    rows.push({ span: s, depth, offsetMs: ms(BigInt(s.startTimeUnixNano)) });
    for (const c of (children.get(s.spanId) ?? []).sort(byStart)) visit(c, depth + 1);
  };
  for (const r of roots.sort(byStart)) visit(r, 0);
  return { rows, totalMs: ms(t1) };
}
