/**
 * How a service proves who it is to NATS, read from the environment once:
 *
 * - `NATS_NKEY`: a file holding the user's nkey seed (`SU...`), what `npm start` and
 *   `infra/nats/gen_auth.ts` hand out; or
 * - `NATS_CREDS`: a `.creds` file (JWT and seed) for a server in operator mode; or
 * - `NATS_USER` and `NATS_PASSWORD`;
 * - plus TLS: `NATS_TLS_CA` (the server's CA), and `NATS_TLS_CERT` with `NATS_TLS_KEY` for a
 *   client certificate. A `tls://` URL or any of these turns TLS on.
 *
 * None of them set: the client connects without credentials, which a kvrelay nats-server
 * refuses.
 *
 * @example
 * ```ts
 * import { natsAuthFromEnv } from "./auth.ts";
 * const auth = natsAuthFromEnv({ NATS_NKEY: "/run/kvrelay/decode.nk" });
 * auth.method; // "nkey"
 * ```
 * @module
 */
import { credsAuthenticator, nkeyAuthenticator } from "@nats-io/nats-core";
import type { ConnectionOptions } from "@nats-io/nats-core";
import { badRequest, KvrelayError } from "../errors.ts";

export interface NatsTls {
  caFile?: string;
  certFile?: string;
  keyFile?: string;
}

export type NatsAuth =
  | { method: "none"; tls?: NatsTls }
  | { method: "nkey"; seedFile: string; tls?: NatsTls }
  | { method: "creds"; credsFile: string; tls?: NatsTls }
  | { method: "password"; user: string; password: string; tls?: NatsTls };

/** Reads the `NATS_*` credential settings; a contradictory set throws at start-up. */
export function natsAuthFromEnv(env: Record<string, string | undefined>): NatsAuth {
  const get = (k: string) => env[k] || undefined;
  const tls: NatsTls = {
    caFile: get("NATS_TLS_CA"),
    certFile: get("NATS_TLS_CERT"),
    keyFile: get("NATS_TLS_KEY"),
  };
  if (!!tls.certFile !== !!tls.keyFile) {
    throw badRequest(
      "NATS_TLS_CERT and NATS_TLS_KEY go together",
      tls.certFile ? "NATS_TLS_KEY" : "NATS_TLS_CERT",
    );
  }
  const withTls = tls.caFile || tls.certFile ? { tls } : {};
  const given = ["NATS_NKEY", "NATS_CREDS", "NATS_USER"].filter((k) => get(k));
  if (given.length > 1) throw badRequest(`give one of ${given.join(", ")}, not several`, given[1]);
  if (get("NATS_PASSWORD") && !get("NATS_USER")) {
    throw badRequest("NATS_PASSWORD needs NATS_USER", "NATS_USER");
  }
  if (get("NATS_NKEY")) return { method: "nkey", seedFile: get("NATS_NKEY")!, ...withTls };
  if (get("NATS_CREDS")) return { method: "creds", credsFile: get("NATS_CREDS")!, ...withTls };
  if (get("NATS_USER")) {
    return { method: "password", user: get("NATS_USER")!, password: get("NATS_PASSWORD") ?? "", ...withTls };
  }
  return { method: "none", ...withTls };
}

async function readSecret(path: string, setting: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (cause) {
    throw new KvrelayError(
      "unavailable",
      `cannot read ${setting} file '${path}': ${(cause as Error).message}`,
      {
        cause,
      },
    );
  }
}

/** The nats.js connection options that present `auth`. */
export async function authOptions(auth: NatsAuth): Promise<Partial<ConnectionOptions>> {
  const out: Partial<ConnectionOptions> = {};
  if (auth.tls) out.tls = { ...auth.tls };
  switch (auth.method) {
    case "nkey": {
      const seed = new TextDecoder().decode(await readSecret(auth.seedFile, "NATS_NKEY")).trim();
      if (!/^SU[A-Z2-7]{56}$/.test(seed)) {
        throw new KvrelayError("unavailable", `NATS_NKEY file '${auth.seedFile}' holds no user nkey seed`);
      }
      out.authenticator = nkeyAuthenticator(new TextEncoder().encode(seed));
      break;
    }
    case "creds":
      out.authenticator = credsAuthenticator(await readSecret(auth.credsFile, "NATS_CREDS"));
      break;
    case "password":
      out.user = auth.user;
      out.pass = auth.password;
      break;
  }
  return out;
}
