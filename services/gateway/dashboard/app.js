// @ts-check
/// <reference lib="dom" />
/**
 * The dashboard page: polls /metrics and /dashboard/api/requests every second and draws what
 * they say; a click on a request draws its spans from the trace receiver through
 * /dashboard/api/traces/<id>. The arithmetic lives in view.js.
 */
import { distribution, histogramBuckets, parseExposition, quantile, sumOf, waterfall } from "./view.js";

const POLL_MS = Number(new URLSearchParams(location.search).get("poll_ms") ?? 1000);
const COMPLETIONS = new Set(["/v1/completions", "/v1/chat/completions"]);
const SERVICE_COLORS = /** @type {Record<string, string>} */ ({
  "kvrelay-gateway": "#2f6fdf",
  "kvrelay-prefill": "#d9822b",
  "kvrelay-compression": "#8e5bd6",
  "kvrelay-decode": "#2a9d55",
});

/** @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
/** @param {number} n @param {number} [digits] */
const fmt = (n, digits = 1) =>
  Number.isFinite(n) ? n.toLocaleString("en", { maximumFractionDigits: digits }) : "–";
/** @param {number} b */
const bytes = (b) =>
  b >= 1e9
    ? `${fmt(b / 1e9, 2)} GB`
    : b >= 1e6
    ? `${fmt(b / 1e6, 2)} MB`
    : b >= 1e3
    ? `${fmt(b / 1e3, 1)} kB`
    : `${fmt(b, 0)} B`;

/**
 * @param {string} tag
 * @param {Record<string, string>} [attrs]
 * @param {(Node | string)[]} [children]
 */
function el(tag, attrs = {}, children = []) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...children);
  return e;
}

/** @param {HTMLElement} dl @param {[string, string][]} rows */
function fillKv(dl, rows) {
  dl.replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {}, [k]), el("dd", {}, [v])]));
}

/** @param {HTMLElement} box @param {{ from: number, to: number, count: number }[]} dist */
function fillBars(box, dist) {
  const max = Math.max(1, ...dist.map((d) => d.count));
  box.replaceChildren(...dist.flatMap((d) => [
    el("span", {}, [d.to === Infinity ? `> ${fmt(d.from, 3)}` : `${fmt(d.from, 3)} – ${fmt(d.to, 3)}`]),
    el("div", {}, [el("div", { class: "bar", style: `width:${(100 * d.count) / max}%` })]),
    el("span", { class: "n" }, [String(d.count)]),
  ]));
}

/** @type {{ t: number, api: number }[]} */
const history = [];
let lastError = "";

async function pollMetrics() {
  const r = await fetch("/metrics");
  if (!r.ok) throw new Error(`/metrics answered ${r.status}`);
  const s = parseExposition(await r.text());
  const completed = sumOf(
    s,
    "kvrelay_requests_total",
    (l) => COMPLETIONS.has(l.endpoint) && l.status.startsWith("2"),
  );
  const failed = sumOf(
    s,
    "kvrelay_requests_total",
    (l) => COMPLETIONS.has(l.endpoint) && !l.status.startsWith("2"),
  );
  $("requests-total").textContent = String(completed);
  $("failed").textContent = String(failed);
  const api = sumOf(s, "kvrelay_requests_total");
  history.push({ t: performance.now(), api });
  if (history.length > 120) history.shift();
  const prev = history.at(-2);
  const rate = prev ? (api - prev.api) / ((history.at(-1)?.t ?? 0) - prev.t) * 1000 : NaN;
  $("rate").textContent = fmt(rate, 2);
  drawSpark(history);

  const pct = (/** @type {string} */ name) => {
    const b = histogramBuckets(s, name);
    const n = b.at(-1)?.count ?? 0;
    const sum = sumOf(s, `${name}_sum`);
    return /** @type {[string, string][]} */ ([
      ["p50", fmt(quantile(b, 0.5))],
      ["p90", fmt(quantile(b, 0.9))],
      ["p99", fmt(quantile(b, 0.99))],
      ["mean", fmt(n ? sum / n : NaN)],
      ["count", String(n)],
    ]);
  };
  fillKv($("ttft"), pct("kvrelay_ttft_ms"));
  fillKv($("handoff"), pct("kvrelay_handoff_ms"));
  const raw = sumOf(s, "kvrelay_kv_raw_bytes_total");
  const wire = sumOf(s, "kvrelay_kv_wire_bytes_total");
  fillKv($("bytes"), [
    ["raw (fp16)", bytes(raw)],
    ["on the wire", bytes(wire)],
    ["saved", raw ? `${bytes(raw - wire)} (${fmt((100 * (raw - wire)) / raw)} %)` : "–"],
    ["overall ratio", wire ? `${fmt(raw / wire, 2)}×` : "–"],
    [
      "tokens in / out",
      `${sumOf(s, "kvrelay_input_tokens_total")} / ${sumOf(s, "kvrelay_output_tokens_total")}`,
    ],
  ]);
  fillBars($("ratio-dist"), distribution(histogramBuckets(s, "kvrelay_kv_ratio")));
  fillBars($("kept-dist"), distribution(histogramBuckets(s, "kvrelay_kept_fraction")));

  /** @type {Map<string, Record<string, number>>} */
  const decode = new Map();
  for (const m of s) {
    const id = m.labels.decode_instance;
    if (!id) continue;
    decode.set(id, { ...decode.get(id), [m.name]: m.value });
  }
  $("decode").querySelector("tbody")?.replaceChildren(...[...decode].map(([id, g]) =>
    el("tr", {}, [
      el("td", {}, [id.slice(0, 10)]),
      el("td", {}, [String(g.kvrelay_running_sequences ?? 0)]),
      el("td", {}, [String(g.kvrelay_waiting_sequences ?? 0)]),
      el("td", {}, [
        `${g.kvrelay_blockstore_used_blocks ?? 0} / ${g.kvrelay_blockstore_capacity_blocks ?? 0}`,
      ]),
    ])
  ));
  const reporters = s.filter((m) => m.name === "kvrelay_metrics_reporters")
    .map((m) => `${m.labels.service} ×${m.value}`).join(", ");
  return reporters ? `services reporting: ${reporters}` : "gateway metrics only";
}

/** @param {{ t: number, api: number }[]} h */
function drawSpark(h) {
  const rates = h.slice(1).map((p, i) => ((p.api - h[i].api) / (p.t - h[i].t)) * 1000);
  const max = Math.max(1e-9, ...rates);
  const pts = rates.map((r, i) => `${(i * 120) / 119},${46 - (44 * r) / max}`).join(" ");
  $("rate-spark").innerHTML = `<polyline fill="none" stroke="#2f6fdf" stroke-width="1.5" points="${pts}"/>`;
}

let chosen = "";

async function pollRequests() {
  const r = await fetch("/dashboard/api/requests");
  if (!r.ok) throw new Error(`/dashboard/api/requests answered ${r.status}`);
  /** @type {{ requests: any[] }} */
  const { requests } = await r.json();
  $("recent").querySelector("tbody")?.replaceChildren(...requests.map((q) => {
    const kv = q.kv ?? {};
    const row = el("tr", { class: `pick${q.id === chosen ? " chosen" : ""}`, "data-request": q.id }, [
      el("td", {}, [q.id]),
      el("td", {}, [q.endpoint]),
      el("td", q.outcome === "ok" ? {} : { class: "err" }, [
        q.outcome + (q.finishReason ? ` (${q.finishReason})` : ""),
      ]),
      el("td", {}, [`${q.promptTokens ?? "–"} / ${q.completionTokens ?? "–"}`]),
      el("td", {}, [fmt(q.ttftMs)]),
      el("td", {}, [kv.codec ?? "–"]),
      el("td", {}, [fmt(kv.ratio, 2)]),
      el("td", {}, [fmt(kv.kept_fraction, 3)]),
      el("td", {}, [kv.raw_bytes === undefined ? "–" : `${bytes(kv.raw_bytes)} → ${bytes(kv.wire_bytes)}`]),
      el("td", {}, [fmt(kv.ms?.handoff)]),
      el("td", {}, [fmt(kv.ms?.encode)]),
    ]);
    row.addEventListener("click", () => void showTrace(q));
    return row;
  }));
}

async function traceStatus() {
  const r = await fetch("/dashboard/api/traces");
  const s = await r.json();
  $("trace-status").textContent = s.running
    ? `trace receiver running at ${s.receiver}: click a request to draw its spans`
    : `no span waterfall: ${s.why}. Start it with 'deno task kvrelay traces --listen 127.0.0.1:4318' and run the services with OTEL_DENO=true OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318.`;
  $("trace-status").dataset.running = String(Boolean(s.running));
}

/** @param {{ id: string, traceId?: string }} q */
async function showTrace(q) {
  chosen = q.id;
  for (const tr of document.querySelectorAll("#recent tr.pick")) {
    tr.classList.toggle("chosen", tr.getAttribute("data-request") === q.id);
  }
  const box = $("waterfall");
  box.replaceChildren();
  if (!q.traceId) {
    $("trace-status").textContent = `${q.id} has no trace id: tracing was off when it ran`;
    return;
  }
  const r = await fetch(`/dashboard/api/traces/${q.traceId}`);
  const body = await r.json();
  if (!r.ok) {
    $("trace-status").textContent = `${q.id}: ${body.error?.message ?? r.status}`;
    return;
  }
  const { rows, totalMs } = waterfall(body.spans);
  $("trace-status").textContent = `${q.id}: trace ${q.traceId}, ${rows.length} spans, ${fmt(totalMs)} ms`;
  box.replaceChildren(...rows.flatMap(({ span, depth, offsetMs }) => [
    el("div", { class: "name", style: `padding-left:${depth}rem`, title: `${span.service} ${span.name}` }, [
      span.name,
    ]),
    el("div", { class: "lane" }, [el("div", {
      class: "seg",
      style: `left:${(100 * offsetMs) / totalMs}%;width:${(100 * span.durationMs) / totalMs}%;` +
        `background:${SERVICE_COLORS[span.service] ?? "#999"}`,
      title: `${span.service}: +${fmt(offsetMs)} ms, ${fmt(span.durationMs, 2)} ms`,
    })]),
    el("div", { class: "ms" }, [`${fmt(span.durationMs, 2)} ms`]),
  ]));
}

async function tick() {
  try {
    const [reporting] = await Promise.all([pollMetrics(), pollRequests()]);
    $("status").textContent = `updated ${new Date().toLocaleTimeString()} · ${reporting}`;
    $("status").classList.remove("err");
    lastError = "";
  } catch (err) {
    lastError = /** @type {Error} */ (err).message;
    $("status").textContent = `update failed: ${lastError}`;
    $("status").classList.add("err");
  }
  setTimeout(tick, POLL_MS);
}

traceStatus().catch((err) => $("trace-status").textContent = `trace status: ${err.message}`);
tick();
