/**
 * NATS helpers every service imports: connection, micro-service endpoints with typed
 * errors, JSON request/reply, and the chunked bundle transfer.
 * @module
 */
export { connectNats } from "./connect.ts";
export { fromJsonBytes, toJsonBytes } from "./codec.ts";
export { requestBytes, requestJson, type RequestOptions } from "./request.ts";
export {
  type EndpointHandler,
  type EndpointSpec,
  SERVICE_VERSION,
  type ServiceSpec,
  startService,
} from "./service.ts";
export { pingService } from "./ping.ts";
export { type LinkClock, LinkModel, type LinkOptions, realClock } from "./link.ts";
export {
  BundleReceiver,
  commitTransfer,
  type ReceivedBundle,
  sendBundles,
  type SendBundlesOptions,
  type SendStats,
} from "./transfer.ts";
