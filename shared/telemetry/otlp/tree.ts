/**
 * Builds a trace's span tree from flat spans and prints it indented, with durations,
 * offsets from the trace start and the key attributes. Knows nothing about storage.
 * @module
 */
import { KEY_ATTRIBUTES } from "../attributes.ts";
import { type AttrValue, type FlatSpan, nanosDiffMs } from "./span.ts";

/** A span with its children, sorted by start time. */
export interface SpanNode {
  span: FlatSpan;
  children: SpanNode[];
  /** True for a root whose `parentSpanId` names a span not in the set (lost or remote). */
  orphan: boolean;
}

/**
 * The roots of the trees formed by `spans` (normally one trace), children linked by
 * `parentSpanId` and sorted by start time. A span whose parent is missing becomes an
 * orphan root; duplicate span ids (a re-sent batch) count once.
 *
 * @example
 * ```ts
 * const [root] = buildSpanTree(spans.filter((s) => s.traceId === id));
 * console.log(root.span.name, root.children.map((c) => c.span.name));
 * ```
 */
export function buildSpanTree(spans: readonly FlatSpan[]): SpanNode[] {
  const nodes = new Map<string, SpanNode>();
  for (const s of spans) {
    if (!nodes.has(s.spanId)) nodes.set(s.spanId, { span: s, children: [], orphan: false });
  }
  const roots: SpanNode[] = [];
  for (const node of nodes.values()) {
    const parentId = node.span.parentSpanId;
    const parent = parentId ? nodes.get(parentId) : undefined;
    if (parent && parent !== node) parent.children.push(node);
    else {
      node.orphan = Boolean(parentId);
      roots.push(node);
    }
  }
  // Spans in a parent cycle are unreachable from any root: show them as orphans.
  const seen = new Set<SpanNode>();
  const visit = (n: SpanNode) => {
    if (seen.has(n)) return;
    seen.add(n);
    n.children.sort(byStart);
    n.children.forEach(visit);
  };
  roots.forEach(visit);
  for (const n of nodes.values()) {
    if (!seen.has(n)) {
      n.orphan = true;
      for (const other of nodes.values()) other.children = other.children.filter((c) => c !== n);
      roots.push(n);
      visit(n);
    }
  }
  return roots.sort(byStart);
}

function byStart(a: SpanNode, b: SpanNode): number {
  const d = BigInt(a.span.startTimeUnixNano) - BigInt(b.span.startTimeUnixNano);
  return d < 0n ? -1 : d > 0n ? 1 : 0;
}

/** Spans of one trace: `traceId` itself, a unique prefix of it, or `"last"` (the trace of the last stored span). */
export function selectTrace(spans: readonly FlatSpan[], traceId: string): FlatSpan[] {
  if (spans.length === 0) return [];
  let id = traceId.toLowerCase();
  if (id === "last") id = spans[spans.length - 1].traceId;
  else if (id.length < 32) {
    const ids = new Set(spans.map((s) => s.traceId).filter((t) => t.startsWith(id)));
    if (ids.size !== 1) return [];
    id = [...ids][0];
  }
  return spans.filter((s) => s.traceId === id);
}

/** Options of {@linkcode formatSpanTree}. */
export interface FormatOptions {
  /** Attribute names printed after each span; `KEY_ATTRIBUTES` unless told. */
  attributes?: readonly string[];
  /** Indent per level; two spaces unless told. */
  indent?: string;
}

/**
 * The tree as text: a header line, then one line per span, indented by depth:
 * `name  12.34 ms  +0.50 ms  [service]  key=value ...`, with `ERROR: message` on failed spans.
 *
 * @example
 * ```ts
 * console.log(formatSpanTree(buildSpanTree(selectTrace(spans, "last"))));
 * ```
 */
export function formatSpanTree(roots: readonly SpanNode[], options: FormatOptions = {}): string {
  if (roots.length === 0) return "(no spans)";
  const keys = options.attributes ?? KEY_ATTRIBUTES;
  const indent = options.indent ?? "  ";
  const all: SpanNode[] = [];
  const depth = new Map<SpanNode, number>();
  const collect = (n: SpanNode, d: number) => {
    all.push(n);
    depth.set(n, d);
    for (const c of n.children) collect(c, d + 1);
  };
  for (const r of roots) collect(r, 0);
  let t0 = all[0].span.startTimeUnixNano, t1 = all[0].span.endTimeUnixNano;
  for (const { span } of all) {
    if (BigInt(span.startTimeUnixNano) < BigInt(t0)) t0 = span.startTimeUnixNano;
    if (BigInt(span.endTimeUnixNano) > BigInt(t1)) t1 = span.endTimeUnixNano;
  }
  const traces = new Set(all.map((n) => n.span.traceId));
  const services = new Set(all.map((n) => n.span.service));
  const lines = [
    `trace ${[...traces].join(", ")}  ${all.length} spans  ${services.size} services  ${
      nanosDiffMs(t0, t1).toFixed(2)
    } ms`,
  ];
  const width = all.reduce((w, n) => Math.max(w, depth.get(n)! * indent.length + n.span.name.length), 0);
  for (const n of all) {
    const s = n.span;
    const label = (indent.repeat(depth.get(n)!) + s.name).padEnd(width);
    const dur = `${s.durationMs.toFixed(2)} ms`.padStart(11);
    const off = `+${nanosDiffMs(t0, s.startTimeUnixNano).toFixed(2)} ms`.padStart(12);
    const attrs = keys.filter((k) => k in s.attributes).map((k) => `${k}=${show(s.attributes[k])}`);
    let text = `${label}  ${dur}  ${off}  [${s.service}]`;
    if (s.kind !== "internal" && s.kind !== "unspecified") text += ` ${s.kind}`;
    if (attrs.length) text += `  ${attrs.join(" ")}`;
    if (s.status.code === "error") text += `  ERROR${s.status.message ? `: ${s.status.message}` : ""}`;
    if (n.orphan) text += `  (parent ${s.parentSpanId} not received)`;
    lines.push(text.trimEnd());
  }
  return lines.join("\n");
}

function show(v: AttrValue): string {
  if (typeof v === "number" && !Number.isInteger(v)) return String(Number(v.toPrecision(4)));
  if (typeof v === "string") return /\s/.test(v) ? JSON.stringify(v) : v;
  return JSON.stringify(v);
}
