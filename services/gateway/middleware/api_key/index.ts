/**
 * API keys and tenants: `/v1` asks for `Authorization: Bearer <key>` when keys are configured,
 * and names the caller's tenant, the SHA-256 of its key (hex), which files and batches record
 * as their owner. The key itself is never stored. Without keys every caller is the one tenant
 * "". It runs before anything reads the body, so an unauthenticated caller learns nothing.
 *
 * @example
 * ```ts
 * // app.use("/v1/*", apiKeyAuth({ keys: ["sk-1", "sk-2"] }));
 * // app.get("/v1/files", (c) => c.json({ tenant: tenantOf(c) }));
 * ```
 * @module
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { Buffer } from "node:buffer";
import type { Context, MiddlewareHandler } from "hono";
import { KvrelayError } from "../../../../shared/errors.ts";

declare module "hono" {
  interface ContextVariableMap {
    /** The caller's tenant (see `tenantId`). */
    tenant: string;
  }
}

const sha256 = (s: string): Buffer => createHash("sha256").update(s).digest();

/** The tenant of an API key: its SHA-256 in hex. */
export function tenantId(key: string): string {
  return sha256(key).toString("hex");
}

/** The caller's tenant; "" where no `apiKeyAuth` ran (the batch routes mounted alone, in tests). */
export function tenantOf(c: Context): string {
  const t = c.get("tenant");
  return typeof t === "string" ? t : "";
}

export function apiKeyAuth(opts: { keys: string[] }): MiddlewareHandler {
  const digests = opts.keys.map(sha256);
  return async function apiKeyAuth(c, next) {
    if (!digests.length) {
      c.set("tenant", "");
      return await next();
    }
    const m = /^Bearer +([^\s]+) *$/i.exec(c.req.header("authorization") ?? "");
    const given = m ? sha256(m[1]) : undefined;
    // every configured key is compared, in constant time, whichever matches
    let ok = false;
    for (const d of digests) if (given && timingSafeEqual(d, given)) ok = true;
    if (!ok) {
      throw new KvrelayError("unauthorized", "a valid API key is required: 'Authorization: Bearer <key>'");
    }
    c.set("tenant", given!.toString("hex"));
    await next();
  };
}
