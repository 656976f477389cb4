import type { NatsConnection } from "@nats-io/nats-core";
import { type Service, type ServiceMsg, Svcm } from "@nats-io/services";
import { SpanKind } from "@opentelemetry/api";
import { asKvrelayError, errorToWire } from "../errors.ts";
import { attr, failSpan, getMetrics, withRemoteParent } from "../telemetry/mod.ts";
import { toJsonBytes } from "./codec.ts";

/** A handler returns the reply: bytes as they are, anything else as JSON. */
export type EndpointHandler = (msg: ServiceMsg) => Promise<Uint8Array | unknown>;

export interface EndpointSpec {
  subject: string;
  handler: EndpointHandler;
  /** Queue group; "" for an instance-only subject. Default: the service's queue "kvrelay-<name>". */
  queue?: string;
}

export interface ServiceSpec {
  name: string;
  description: string;
  endpoints: Record<string, EndpointSpec>;
  /** Served in $SRV.INFO replies (e.g. the model a prefill instance holds). */
  metadata?: Record<string, string>;
  /** Extra data served in $SRV.STATS replies, as the first endpoint's `data`. */
  statsData?: () => unknown | Promise<unknown>;
}

export const SERVICE_VERSION = "0.1.0";

/**
 * Starts a NATS micro-service (discovery, PING/INFO/STATS) whose endpoints reply with our
 * error vocabulary: a thrown `KvrelayError` travels as `Nats-Service-Error(-Code)` headers
 * (HTTP status as the code) and a JSON body `{code, message}` that `requestBytes` rebuilds.
 * Every message is handled in a SERVER span `<service>.<endpoint>` whose parent is the
 * trace context in its headers; a failure is recorded on it and counted in `kvrelay.failures`.
 */
export async function startService(nc: NatsConnection, spec: ServiceSpec): Promise<Service> {
  // NATS asks for data once per endpoint; one copy is enough, on the first.
  const firstSubject = Object.values(spec.endpoints)[0]?.subject;
  const statsData = spec.statsData;
  const svc = await new Svcm(nc).add({
    name: spec.name,
    version: SERVICE_VERSION,
    description: spec.description,
    metadata: spec.metadata,
    queue: `kvrelay-${spec.name}`,
    statsHandler: statsData
      ? async (ep) => ep.subject === firstSubject ? await statsData() : undefined
      : undefined,
  });
  for (const [name, ep] of Object.entries(spec.endpoints)) {
    svc.addEndpoint(name, {
      subject: ep.subject,
      queue: ep.queue,
      handler: (err, msg) => {
        if (err) return;
        void runHandler(`${spec.name}.${name}`, ep.handler, msg);
      },
    });
  }
  return svc;
}

function runHandler(spanName: string, handler: EndpointHandler, msg: ServiceMsg): Promise<void> {
  return withRemoteParent(msg.headers, spanName, async (span) => {
    try {
      const out = await handler(msg);
      if (!msg.reply) return;
      msg.respond(out instanceof Uint8Array ? out : toJsonBytes(out ?? {}));
    } catch (err) {
      const e = asKvrelayError(err);
      failSpan(span, e);
      getMetrics().failures.add(1, { [attr.ERROR_TYPE]: e.code, [attr.STAGE]: spanName });
      if (e.code === "internal") console.error(`[${msg.subject}]`, err);
      if (!msg.reply) return;
      const wire = errorToWire(e);
      const status = e.status;
      msg.respondError(status, wire.message.replaceAll(/[\r\n]/g, " ").slice(0, 500), toJsonBytes(wire));
    }
  }, { kind: SpanKind.SERVER, attrs: { [attr.NATS_SUBJECT]: msg.subject } });
}
