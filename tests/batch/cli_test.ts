import { assertEquals, assertMatch } from "@std/assert";
import { freePort } from "../_harness/nats_server.ts";
import { parseBatchArgs, progressLine, run } from "../../services/cli/commands/batch.ts";
import { line, setup, startWorker } from "./_setup.ts";

Deno.test("parseBatchArgs() reads the command, target and options", () => {
  const a = parseBatchArgs(["results", "batch_x", "--errors", "--url", "http://h:1/"], {});
  assertEquals([a.command, a.target, a.errors, a.url], ["results", "batch_x", true, "http://h:1"]);
  assertEquals(parseBatchArgs(["status", "b"], { KVRELAY_PORT: "9" }).url, "http://127.0.0.1:9");
});

Deno.test("batch CLI submits, follows and downloads a batch through the gateway", {
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const env = await setup();
  const worker = startWorker(env);
  const port = freePort();
  const server = Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, env.app.fetch);
  const dir = await Deno.makeTempDir({ prefix: "kvrelay-batch-cli-" });
  try {
    const url = `http://127.0.0.1:${port}`;
    await Deno.writeTextFile(
      `${dir}/in.jsonl`,
      ["a", "b", "c"].map((id) => line(id)).join("\n") + "\n{oops\n",
    );
    assertEquals(await run(["submit", `${dir}/in.jsonl`, "--wait", "--url", url, "--interval", "50"]), 0);
    const list = await (await env.app.request("/v1/batches")).json();
    const id = list.data[0].id;
    assertEquals(await run(["results", id, "--url", url, "--out", `${dir}/out.jsonl`]), 0);
    const out = (await Deno.readTextFile(`${dir}/out.jsonl`)).trim().split("\n").map((l) => JSON.parse(l));
    assertEquals(out.map((r) => r.custom_id), ["a", "b", "c"]);
    assertEquals(await run(["results", id, "--errors", "--url", url, "--out", `${dir}/err.jsonl`]), 0);
    assertMatch(await Deno.readTextFile(`${dir}/err.jsonl`), /invalid_json_line/);
    assertMatch(
      progressLine(await (await env.app.request(`/v1/batches/${id}`)).json(), 10),
      /\[#{10}\] 4\/4 \(1 failed\) completed/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
    await server.shutdown();
    await worker.stop();
    await env.close();
  }
});
