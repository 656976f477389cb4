/**
 * Credentials for running kvrelay against a NATS server of your own (across hosts):
 *
 *   deno run -A --cached-only infra/nats/gen_auth.ts <dir>
 *
 * writes into `<dir>` (created with mode 0700):
 * - `kvrelay-accounts.conf`: the `accounts` block with one nkey user per service role and that
 *   role's permissions (shared/nats/permissions.ts); `include` it in the server's config, as
 *   infra/nats/multi-host.conf does. It holds public keys only.
 * - `<role>.nk` for gateway, prefill, decode and batch: each role's seed (mode 0600). Copy each
 *   to the hosts that run that role only, and point `NATS_NKEY` at it there.
 *
 * Running it again makes new keys: restart the server and hand out the new seeds.
 * @module
 */
import { generateRoleKeys, renderAccounts, writeSeeds } from "../../shared/nats/server_auth.ts";

export async function writeAuthDir(dir: string, opts: { responseExpiryMs?: number } = {}): Promise<void> {
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const keys = generateRoleKeys();
  await writeSeeds(dir, keys);
  await Deno.writeTextFile(
    `${dir}/kvrelay-accounts.conf`,
    `# kvrelay service users, made by infra/nats/gen_auth.ts. Public keys only.\n${
      renderAccounts(keys, opts)
    }`,
  );
}

if (import.meta.main) {
  const dir = Deno.args[0];
  if (!dir) {
    console.error("usage: deno run -A --cached-only infra/nats/gen_auth.ts <dir>");
    Deno.exit(2);
  }
  await writeAuthDir(dir);
  console.error(`wrote ${dir}/kvrelay-accounts.conf and ${dir}/{gateway,prefill,decode,batch}.nk`);
  console.error(
    `include it in the server's config (see infra/nats/multi-host.conf); give each host NATS_NKEY=<its role>.nk`,
  );
}
