/**
 * `npm run kvrelay -- batch`: submit and follow batch jobs through the gateway's OpenAI
 * Batch API (so it works against any deployment the client can reach).
 *
 *   batch submit FILE.jsonl [--endpoint URL] [--wait]   upload, create, optionally follow
 *   batch status ID [--watch]                           the batch object, or a progress bar
 *   batch results ID [--errors] [--out FILE]            the output (or error) file
 *   batch list                                          one line per batch
 *   batch cancel ID
 *
 * Common options: `--url` (default `KVRELAY_URL`, else http://127.0.0.1:`KVRELAY_PORT`|8080),
 * `--api-key` (default `KVRELAY_API_KEY`). On a terminal, following draws a progress bar on
 * stderr; otherwise one line per change.
 * @module
 */
import { badRequest, KvrelayError } from "../../../shared/errors.ts";
import type { BatchObject } from "../../../shared/batch/mod.ts";

const USAGE = `usage:
  npm run kvrelay -- batch submit FILE.jsonl [--endpoint /v1/completions|/v1/chat/completions] [--wait]
  npm run kvrelay -- batch status ID [--watch]
  npm run kvrelay -- batch results ID [--errors] [--out FILE]
  npm run kvrelay -- batch list
  npm run kvrelay -- batch cancel ID
options: --url URL (KVRELAY_URL), --api-key KEY (KVRELAY_API_KEY), --interval MS (500)`;

export interface BatchArgs {
  command: "submit" | "status" | "results" | "list" | "cancel" | "help";
  target?: string;
  url: string;
  apiKey?: string;
  endpoint?: string;
  follow: boolean;
  errors: boolean;
  out?: string;
  intervalMs: number;
}

export function parseBatchArgs(args: string[], env = Deno.env.toObject()): BatchArgs {
  const [command, ...rest] = args;
  const out: BatchArgs = {
    command: "help",
    url: env.KVRELAY_URL || `http://127.0.0.1:${env.KVRELAY_PORT || 8080}`,
    apiKey: env.KVRELAY_API_KEY || undefined,
    follow: false,
    errors: false,
    intervalMs: 500,
  };
  if (!command || command === "--help" || command === "-h") return out;
  if (!["submit", "status", "results", "list", "cancel"].includes(command)) {
    throw badRequest(`unknown batch command '${command}'\n${USAGE}`);
  }
  out.command = command as BatchArgs["command"];
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    const value = () => {
      const v = rest[++i];
      if (v === undefined || v.startsWith("--")) throw badRequest(`${a} needs a value`, a);
      return v;
    };
    if (a === "--url") out.url = value().replace(/\/$/, "");
    else if (a === "--api-key") out.apiKey = value();
    else if (a === "--endpoint") out.endpoint = value();
    else if (a === "--wait" || a === "--watch") out.follow = true;
    else if (a === "--errors") out.errors = true;
    else if (a === "--out") out.out = value();
    else if (a === "--interval") {
      out.intervalMs = Number(value());
      if (!Number.isFinite(out.intervalMs) || out.intervalMs < 10) {
        throw badRequest("--interval must be >= 10", a);
      }
    } else if (a.startsWith("--")) throw badRequest(`unknown option '${a}'\n${USAGE}`, a);
    else if (out.target === undefined) out.target = a;
    else throw badRequest(`unexpected argument '${a}'`, a);
  }
  if (out.command !== "list" && !out.target) {
    throw badRequest(`batch ${out.command} needs ${out.command === "submit" ? "a FILE" : "a batch ID"}`);
  }
  return out;
}

class Api {
  constructor(readonly base: string, readonly apiKey?: string) {}
  async call(method: string, path: string, body?: BodyInit): Promise<Response> {
    const headers: Record<string, string> = {};
    if (this.apiKey) headers.authorization = `Bearer ${this.apiKey}`;
    if (typeof body === "string") headers["content-type"] = "application/json";
    let res: Response;
    try {
      res = await fetch(`${this.base}/v1${path}`, { method, body, headers });
    } catch (err) {
      throw new KvrelayError(
        "unavailable",
        `cannot reach the gateway at ${this.base}: ${(err as Error).message}`,
      );
    }
    if (!res.ok) {
      const text = await res.text();
      let msg = text;
      try {
        msg = JSON.parse(text).error?.message ?? text;
      } catch { /* not JSON */ }
      throw new KvrelayError(res.status === 404 ? "not_found" : "bad_request", `${method} ${path}: ${msg}`);
    }
    return res;
  }
  async batch(id: string): Promise<BatchObject> {
    return await (await this.call("GET", `/batches/${id}`)).json();
  }
}

const FINAL = ["completed", "failed", "expired", "cancelled"];

/** `[#########-----------]  45/100 (2 failed) in_progress`. */
export function progressLine(b: BatchObject, width = 30): string {
  const { total, completed, failed } = b.request_counts;
  const done = completed + failed;
  const filled = total ? Math.round((done / total) * width) : 0;
  const bar = "#".repeat(filled) + "-".repeat(width - filled);
  const fail = failed ? ` (${failed} failed)` : "";
  return `[${bar}] ${String(done).padStart(String(total).length)}/${total}${fail} ${b.status}`;
}

async function follow(api: Api, id: string, intervalMs: number): Promise<BatchObject> {
  const tty = Deno.stderr.isTerminal();
  const enc = new TextEncoder();
  let last = "";
  while (true) {
    const b = await api.batch(id);
    const line = progressLine(b);
    if (line !== last) {
      if (tty) Deno.stderr.writeSync(enc.encode(`\r\x1b[2K${line}`));
      else console.error(line);
      last = line;
    }
    if (FINAL.includes(b.status)) {
      if (tty) Deno.stderr.writeSync(enc.encode("\n"));
      return b;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export async function run(args: string[]): Promise<number> {
  const a = parseBatchArgs(args);
  if (a.command === "help") {
    console.log(USAGE);
    return args.length ? 0 : 2;
  }
  const api = new Api(a.url, a.apiKey);
  switch (a.command) {
    case "submit": {
      const text = await Deno.readTextFile(a.target!);
      const endpoint = a.endpoint ?? firstUrl(text) ?? "/v1/completions";
      const form = new FormData();
      form.append("purpose", "batch");
      form.append("file", new File([text], a.target!.split("/").at(-1)!, { type: "application/jsonl" }));
      const file = await (await api.call("POST", "/files", form)).json();
      const created: BatchObject = await (await api.call(
        "POST",
        "/batches",
        JSON.stringify({ input_file_id: file.id, endpoint, completion_window: "24h" }),
      )).json();
      console.log(created.id);
      if (!a.follow) return 0;
      const b = await follow(api, created.id, a.intervalMs);
      return b.status === "completed" ? 0 : 1;
    }
    case "status": {
      if (a.follow) {
        const b = await follow(api, a.target!, a.intervalMs);
        return b.status === "completed" ? 0 : 1;
      }
      console.log(JSON.stringify(await api.batch(a.target!), null, 2));
      return 0;
    }
    case "results": {
      const b = await api.batch(a.target!);
      const fileId = a.errors ? b.error_file_id : b.output_file_id;
      if (!fileId) {
        console.error(
          FINAL.includes(b.status)
            ? `batch ${b.id} has no ${a.errors ? "error" : "output"} file`
            : `batch ${b.id} is ${b.status}: results come when it ends`,
        );
        return 1;
      }
      const bytes = new Uint8Array(await (await api.call("GET", `/files/${fileId}/content`)).arrayBuffer());
      if (a.out) await Deno.writeFile(a.out, bytes);
      else await Deno.stdout.write(bytes);
      return 0;
    }
    case "list": {
      const list = await (await api.call("GET", "/batches?limit=100")).json() as { data: BatchObject[] };
      for (const b of list.data) {
        console.log(`${b.id}  ${new Date(b.created_at * 1000).toISOString()}  ${progressLine(b, 20)}`);
      }
      return 0;
    }
    case "cancel": {
      const b: BatchObject = await (await api.call("POST", `/batches/${a.target}/cancel`)).json();
      console.log(`${b.id} ${b.status}`);
      return 0;
    }
  }
  return 2;
}

function firstUrl(text: string): string | undefined {
  for (const l of text.split("\n")) {
    if (!l.trim()) continue;
    try {
      const u = JSON.parse(l).url;
      return typeof u === "string" ? u : undefined;
    } catch {
      return undefined;
    }
  }
  return undefined;
}
