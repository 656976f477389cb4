/**
 * The server side of NATS auth: a fresh nkey per role, the nats-server `accounts` block that
 * admits exactly those keys with their role's permissions (permissions.ts), and seed files a
 * service reads through `NATS_NKEY`. An nkey client signs the server's nonce, so no secret
 * crosses the network and the config file holds public keys only. Anonymous clients are
 * refused unless the config names a `no_auth_user` (the test harness does, for a test's own
 * client).
 *
 * @example
 * ```ts
 * import { generateRoleKeys, renderAccounts } from "./server_auth.ts";
 * const keys = generateRoleKeys();
 * const conf = renderAccounts(keys, { jetstream: true }); // append to nats-server.conf
 * ```
 * @module
 */
import { nkeys } from "@nats-io/nats-core";
import { type Permissions, type Role, rolePermissions, ROLES } from "./permissions.ts";

/** The account every kvrelay user lives in, apart from anything else on a shared server. */
export const ACCOUNT = "KVRELAY";

export interface RoleKey {
  role: Role;
  /** `U...`: what the server config lists. */
  publicKey: string;
  /** `SU...`: the secret the service signs with. */
  seed: string;
}

/** A fresh user nkey for each role. */
export function generateRoleKeys(roles: readonly Role[] = ROLES): RoleKey[] {
  return roles.map((role) => {
    const kp = nkeys.createUser();
    return { role, publicKey: kp.getPublicKey(), seed: new TextDecoder().decode(kp.getSeed()) };
  });
}

export interface RenderOptions {
  /** JetStream for the account (the server must run it). Default true. */
  jetstream?: boolean;
  /** How long a request may wait for its reply (allow_responses). Default 10 minutes. */
  responseExpiryMs?: number;
  /** More users, as config text (e.g. a test operator with every permission). */
  extraUsers?: string[];
}

const q = (s: string) => JSON.stringify(s);

function renderPermissions(p: Permissions, expiryMs: number): string {
  const lines = [
    `publish: { allow: [${p.publish.map(q).join(", ")}] }`,
    `subscribe: { allow: [${p.subscribe.map(q).join(", ")}] }`,
  ];
  if (p.responses) lines.push(`allow_responses: { max: 1, expires: "${Math.ceil(expiryMs / 1000)}s" }`);
  return `{ ${lines.join(", ")} }`;
}

/** The nats-server `accounts` block admitting `keys`, each with its role's permissions. */
export function renderAccounts(keys: readonly RoleKey[], opts: RenderOptions = {}): string {
  const expiry = opts.responseExpiryMs ?? 10 * 60_000;
  const users = keys.map((k) =>
    `      # ${k.role}\n      { nkey: ${q(k.publicKey)}, permissions: ${
      renderPermissions(rolePermissions(k.role), expiry)
    } }`
  );
  for (const u of opts.extraUsers ?? []) users.push(`      ${u}`);
  return [
    "accounts {",
    `  ${ACCOUNT}: {`,
    ...(opts.jetstream === false ? [] : ["    jetstream: enabled"]),
    "    users: [",
    ...users,
    "    ]",
    "  }",
    "}",
    "",
  ].join("\n");
}

/**
 * Writes each role's seed to `<dir>/<role>.nk` (readable by the owner only) and returns the
 * environment that hands a service its credentials.
 */
export async function writeSeeds(
  dir: string,
  keys: readonly RoleKey[],
): Promise<Map<Role, Record<string, string>>> {
  const env = new Map<Role, Record<string, string>>();
  for (const k of keys) {
    const path = `${dir}/${k.role}.nk`;
    await Deno.writeTextFile(path, k.seed + "\n", { mode: 0o600 });
    await Deno.chmod(path, 0o600);
    env.set(k.role, { NATS_NKEY: path });
  }
  return env;
}
