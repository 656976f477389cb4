/**
 * `deno task kvrelay traces`: a local stand-in for an OTLP backend.
 *
 *   traces --listen 127.0.0.1:4318 [--store out/traces.jsonl]   receive and store spans
 *   traces --show [TRACE_ID|--last] [--store out/traces.jsonl]  print one trace's span tree
 *   traces --list [--store out/traces.jsonl]                     one line per stored trace
 *
 * Point services at the receiver with `OTEL_DENO=true
 * OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318`. See infra/otel/README.md for a real
 * collector instead.
 * @module
 */
import { badRequest } from "../../../shared/errors.ts";
import {
  buildSpanTree,
  type FlatSpan,
  formatSpanTree,
  openSpanStore,
  readSpans,
  selectTrace,
  startOtlpReceiver,
} from "../../../shared/telemetry/otlp/mod.ts";
import { installShutdown, onShutdown } from "../../../shared/telemetry/shutdown.ts";

export const DEFAULT_STORE = "out/traces.jsonl";

const USAGE = `usage:
  deno task kvrelay traces --listen HOST:PORT [--store FILE]
  deno task kvrelay traces --show [TRACE_ID|--last] [--store FILE]
  deno task kvrelay traces --list [--store FILE]
store defaults to ${DEFAULT_STORE}`;

interface TracesArgs {
  mode: "listen" | "show" | "list" | "help";
  listen?: { hostname: string; port: number };
  traceId: string;
  store: string;
}

export function parseTracesArgs(args: string[]): TracesArgs {
  const out: TracesArgs = { mode: "help", traceId: "last", store: DEFAULT_STORE };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const value = () => {
      const v = args[++i];
      if (v === undefined || v.startsWith("--")) throw badRequest(`${a} needs a value`, a);
      return v;
    };
    if (a === "--help" || a === "-h") out.mode = "help";
    else if (a === "--listen") {
      out.mode = "listen";
      out.listen = parseHostPort(value());
    } else if (a === "--store") out.store = value();
    else if (a === "--list") out.mode = "list";
    else if (a === "--show") {
      out.mode = "show";
      const next = args[i + 1];
      if (next !== undefined && !next.startsWith("--")) out.traceId = args[++i];
    } else if (a === "--last") out.traceId = "last";
    else throw badRequest(`unknown option '${a}'\n${USAGE}`, a);
  }
  return out;
}

function parseHostPort(s: string): { hostname: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(s) ?? /^()()(\d{1,5})$/.exec(s);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw badRequest(`--listen wants HOST:PORT, got '${s}'`, "--listen");
  return { hostname: m[1] || m[2] || "127.0.0.1", port };
}

export async function run(args: string[]): Promise<number> {
  const opts = parseTracesArgs(args);
  switch (opts.mode) {
    case "help":
      console.log(USAGE);
      return args.length ? 0 : 2;
    case "listen":
      return await listen(opts);
    case "show":
      return await show(opts);
    case "list":
      return await list(opts);
  }
}

async function listen(opts: TracesArgs): Promise<number> {
  const store = await openSpanStore(opts.store);
  const rx = startOtlpReceiver({
    ...opts.listen!,
    // for the gateway's dashboard (GET /api/traces/<id>)
    lookUp: async (traceId) => (await readSpans(opts.store)).filter((s) => s.traceId === traceId),
    async onSpans(spans) {
      await store.append(spans);
      if (spans.length === 0) return;
      const traces = new Set(spans.map((s) => s.traceId));
      const services = new Set(spans.map((s) => s.service));
      console.error(
        `traces: ${spans.length} spans (${[...services].join(", ")}), trace ${[...traces].join(", ")}`,
      );
    },
  });
  console.error(`traces: OTLP/HTTP on ${rx.endpoint} (POST /v1/traces), storing to ${opts.store}`);
  const stopped = Promise.withResolvers<void>();
  onShutdown(async () => {
    await rx.close();
    stopped.resolve();
  });
  installShutdown();
  await stopped.promise;
  return 0;
}

async function loadStore(path: string): Promise<FlatSpan[] | undefined> {
  try {
    return await readSpans(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      console.error(`traces: no store at ${path} (run --listen first)`);
      return undefined;
    }
    throw err;
  }
}

async function show(opts: TracesArgs): Promise<number> {
  const spans = await loadStore(opts.store);
  if (!spans) return 1;
  const trace = selectTrace(spans, opts.traceId);
  if (trace.length === 0) {
    console.error(`traces: no trace '${opts.traceId}' in ${opts.store}`);
    return 1;
  }
  console.log(formatSpanTree(buildSpanTree(trace)));
  return 0;
}

async function list(opts: TracesArgs): Promise<number> {
  const spans = await loadStore(opts.store);
  if (!spans) return 1;
  const byTrace = new Map<string, FlatSpan[]>();
  for (const s of spans) byTrace.set(s.traceId, [...(byTrace.get(s.traceId) ?? []), s]);
  for (const [id, group] of byTrace) {
    const roots = buildSpanTree(group).filter((n) => !n.orphan);
    const root = roots[0]?.span ?? group[0];
    const started = new Date(Number(BigInt(root.startTimeUnixNano) / 1_000_000n)).toISOString();
    console.log(
      `${id}  ${started}  ${String(group.length).padStart(4)} spans  ${
        root.durationMs.toFixed(2)
      } ms  ${root.name}`,
    );
  }
  return 0;
}
