/**
 * The gateway's metrics and dashboard: its own instruments (`GatewayMetrics`), the middleware
 * and backend wrapper that feed them, and the /metrics and /dashboard routes.
 * @module
 */
export { GatewayMetrics } from "./gateway_metrics.ts";
export { countRequests } from "./count_requests.ts";
export { meteredBackend } from "./metered_backend.ts";
export { type RecentRequest, RecentRequests } from "./recent_requests.ts";
export { type ObservabilityOptions, observabilityRoutes } from "./routes.ts";
