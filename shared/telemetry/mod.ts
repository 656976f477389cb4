/**
 * Tracing and metrics for every kvrelay service, on `@opentelemetry/api` exported by Deno's
 * built-in OpenTelemetry (`OTEL_DENO=true`). Without that variable every call here is a
 * cheap no-op, so services call it unconditionally.
 *
 * - `getTracer`, `withSpan`, `failSpan`: spans with errors recorded.
 * - `injectContext`, `extractContext`, `withRemoteParent`: W3C trace context over NATS headers.
 * - `honoRouteName`: names the gateway's server span by route.
 * - `getMetrics`: histograms and counters.
 * - `installShutdown`, `onShutdown`, `shutdown`: clean stop that flushes spans.
 * - `attributes.ts` (re-exported as `attr`): stable attribute names.
 *
 * @example
 * ```ts
 * import { attr, installShutdown, withRemoteParent } from "../../shared/telemetry/mod.ts";
 * installShutdown();
 * for await (const msg of nc.subscribe("kvrelay.encode")) {
 *   withRemoteParent(msg.headers, "encode", (span) => span.setAttribute(attr.LAYER, "0-3"));
 * }
 * ```
 * @module
 */
export * as attr from "./attributes.ts";
export { failSpan, getTracer, TRACER_NAME, withSpan, type WithSpanOptions } from "./tracer.ts";
export { extractContext, injectContext, type RemoteParentOptions, withRemoteParent } from "./nats_context.ts";
export { getMetrics, type KvrelayMetrics, METER_NAME } from "./metrics.ts";
export {
  type Cleanup,
  installShutdown,
  onShutdown,
  runCleanups,
  shutdown,
  type ShutdownOptions,
  uninstallShutdown,
} from "./shutdown.ts";
export { honoRouteName, type RouteNameOptions } from "./hono_route_name.ts";
