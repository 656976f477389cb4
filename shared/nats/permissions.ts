/**
 * Who may publish and subscribe to what: one NATS user per service role, each allowed only the
 * subjects its role needs (shared/handoff/contract.ts names them), plus replies to the requests
 * it receives (`allow_responses`). Replies to a role's own requests come to its own inbox
 * prefix, `_INBOX.kvrelay-<role>`, so no role reads another's replies. The launcher, the test
 * harness and `infra/nats/gen_auth.ts` all render their server config from this table.
 *
 * What it does not know: how credentials are made or handed out (server_auth.ts), nor how a
 * client presents them (auth.ts).
 * @module
 */
import { SUBJECTS } from "../handoff/contract.ts";
import { BATCHES_BUCKET, FILES_BUCKET, LINES_SUBJECT, RESULTS_BUCKET } from "../batch/store.ts";

export const ROLES = ["gateway", "prefill", "decode", "batch"] as const;
export type Role = (typeof ROLES)[number];

export interface Permissions {
  publish: string[];
  subscribe: string[];
  /** May reply to requests it receives (NATS `allow_responses`, one reply each). */
  responses: boolean;
}

/** The connection name of a role's processes (shown in server monitoring). */
export function connectionName(role: Role): string {
  return `kvrelay-${role}`;
}

/**
 * The inbox prefix of a connection: `_INBOX.<name>` when the name is one subject token, else
 * NATS's shared `_INBOX`. A role's permissions allow it to subscribe to its own prefix only.
 */
export function inboxPrefix(name: string): string {
  return /^[A-Za-z0-9_-]{1,64}$/.test(name) ? `_INBOX.${name}` : "_INBOX";
}

const ownInbox = (role: Role) => `${inboxPrefix(connectionName(role))}.>`;
const TOKENS = SUBJECTS.tokens("*");
const INGEST = SUBJECTS.ingest("decode", "*");
const CONTROL = SUBJECTS.control("decode", "*");

/** Running completions across the cluster (services/gateway/backend.ts). */
const completions = {
  publish: [
    SUBJECTS.decodeOpen,
    SUBJECTS.prefillRun,
    SUBJECTS.prefillTokenize,
    SUBJECTS.prefillDetokenize,
    CONTROL,
    "$SRV.PING.>",
    "$SRV.INFO.>",
  ],
  subscribe: [TOKENS],
};

/** Files, batches and their work queue on JetStream (shared/batch/store.ts). */
const batchStore = [
  "$JS.API.>",
  "$JS.FC.>",
  `$KV.${FILES_BUCKET}.>`,
  `$KV.${BATCHES_BUCKET}.>`,
  `$KV.${RESULTS_BUCKET}.>`,
  `$O.${FILES_BUCKET}.>`,
  `${LINES_SUBJECT}.>`,
];

/** Every role's permissions. */
export function rolePermissions(role: Role): Permissions {
  switch (role) {
    case "gateway":
      return {
        // `$SRV.STATS`: every instance's metrics, for GET /metrics (shared/metrics/report.ts).
        publish: [...completions.publish, ...batchStore, SUBJECTS.serviceStats(">")],
        subscribe: [ownInbox(role), ...completions.subscribe],
        responses: false,
      };
    case "batch":
      return {
        // `$JS.ACK`: acks and in-progress notices of the lines a worker runs (more than one reply each).
        publish: [...completions.publish, ...batchStore, "$JS.ACK.>"],
        subscribe: [ownInbox(role), ...completions.subscribe],
        responses: false,
      };
    case "prefill":
      // The prefill node: prefill and its in-process compression.
      return {
        publish: [INGEST],
        subscribe: [
          ownInbox(role),
          SUBJECTS.prefillRun,
          SUBJECTS.prefillTokenize,
          SUBJECTS.prefillDetokenize,
          SUBJECTS.compressionStatus("*"),
          "$SRV.>",
        ],
        responses: true,
      };
    case "decode":
      return {
        publish: [TOKENS],
        subscribe: [ownInbox(role), SUBJECTS.decodeOpen, INGEST, CONTROL, "$SRV.>"],
        responses: true,
      };
  }
}
