import { assertEquals, assertRejects, assertThrows } from "@std/assert";
import { KvrelayError } from "../errors.ts";
import { authOptions, natsAuthFromEnv } from "./auth.ts";

Deno.test("natsAuthFromEnv() reads one credential and the TLS files; a contradiction throws at start-up", () => {
  assertEquals(natsAuthFromEnv({}), { method: "none" });
  assertEquals(natsAuthFromEnv({ NATS_NKEY: "/k/decode.nk", NATS_USER: "" }), {
    method: "nkey",
    seedFile: "/k/decode.nk",
  });
  assertEquals(natsAuthFromEnv({ NATS_USER: "u", NATS_PASSWORD: "p", NATS_TLS_CA: "/ca.pem" }), {
    method: "password",
    user: "u",
    password: "p",
    tls: { caFile: "/ca.pem", certFile: undefined, keyFile: undefined },
  });
  assertEquals(natsAuthFromEnv({ NATS_CREDS: "/x.creds" }).method, "creds");
  for (
    const env of [
      { NATS_NKEY: "/a", NATS_CREDS: "/b" },
      { NATS_PASSWORD: "p" },
      { NATS_TLS_CERT: "/c.pem" },
    ]
  ) {
    assertEquals(assertThrows(() => natsAuthFromEnv(env), KvrelayError).code, "bad_request");
  }
});

Deno.test("authOptions() refuses a seed file that holds no user seed", async () => {
  const f = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(f, "not a seed\n");
    await assertRejects(
      () => authOptions({ method: "nkey", seedFile: f }),
      KvrelayError,
      "no user nkey seed",
    );
    await assertRejects(
      () => authOptions({ method: "nkey", seedFile: `${f}.missing` }),
      KvrelayError,
      "cannot read",
    );
  } finally {
    await Deno.remove(f);
  }
});
