import { assertEquals, assertRejects } from "@std/assert";
import { headers } from "@nats-io/nats-core";
import { startNatsServer } from "../../tests/_harness/nats_server.ts";
import { KvrelayError } from "../errors.ts";
import { connectNats } from "./connect.ts";
import { startService } from "./service.ts";
import {
  BundleReceiver,
  commitTransfer,
  H_BUNDLE,
  H_BUNDLE_BYTES,
  H_BUNDLE_CRC32,
  H_CHUNK,
  H_TRANSFER,
  sendBundles,
} from "./transfer.ts";
import { requestBytes } from "./request.ts";

function randomBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

async function setup() {
  const server = await startNatsServer({ jetstream: false });
  const nc = await connectNats(server.url, "transfer-test");
  const receiver = new BundleReceiver({ maxBundleBytes: 1 << 20 });
  const svc = await startService(nc, {
    name: "xfertest",
    description: "transfer test",
    endpoints: { ingest: { subject: "test.ingest", handler: receiver.handle, queue: "" } },
  });
  return {
    nc,
    receiver,
    close: async () => {
      await svc.stop();
      await nc.close();
      await server.stop();
    },
  };
}

Deno.test("sendBundles() delivers every bundle intact across many chunks and commits", async () => {
  const { nc, receiver, close } = await setup();
  try {
    const bundles = [randomBytes(10_000, 1), randomBytes(1, 2), randomBytes(33_333, 3)];
    const got: { index: number; bytes: Uint8Array }[] = [];
    receiver.expect("t1", {
      onBundle: (b) => {
        got.push({ index: b.index, bytes: b.bytes });
        return Promise.resolve();
      },
      onCommit: (count, body) => Promise.resolve({ count, body, seen: got.length }),
    }, 10_000);
    const stats = await sendBundles(nc, "test.ingest", "t1", bundles, {
      timeoutMs: 5000,
      maxChunkBytes: 1024,
    });
    assertEquals(stats.bundles, 3);
    assertEquals(stats.chunks, 10 + 1 + 33);
    const reply = await commitTransfer(nc, "test.ingest", "t1", 3, { hello: 1 }, { timeoutMs: 5000 });
    assertEquals(reply, { count: 3, body: { hello: 1 }, seen: 3 });
    got.sort((a, b) => a.index - b.index);
    assertEquals(got.map((g) => g.bytes), bundles);
    assertEquals(receiver.openTransfers, 0);
  } finally {
    await close();
  }
});

Deno.test("BundleReceiver.handle() rejects a chunk whose bundle digest does not match", async () => {
  const { nc, receiver, close } = await setup();
  try {
    receiver.expect("t2", { onBundle: () => Promise.resolve(), onCommit: () => Promise.resolve({}) }, 10_000);
    const h = headers();
    h.set(H_TRANSFER, "t2");
    h.set(H_BUNDLE, "0");
    h.set(H_CHUNK, "0/1");
    h.set(H_BUNDLE_BYTES, "4");
    h.set(H_BUNDLE_CRC32, "0".repeat(8));
    const err = await assertRejects(
      () => requestBytes(nc, "test.ingest", new Uint8Array([1, 2, 3, 4]), { timeoutMs: 5000, headers: h }),
      KvrelayError,
    );
    assertEquals(err.code, "corrupt_bundle");
  } finally {
    await close();
  }
});

Deno.test("commitTransfer() fails with corrupt_bundle when a bundle never arrived", async () => {
  const { nc, receiver, close } = await setup();
  try {
    let committed = false;
    receiver.expect("t3", {
      onBundle: () => Promise.resolve(),
      onCommit: () => {
        committed = true;
        return Promise.resolve({});
      },
    }, 10_000);
    await sendBundles(nc, "test.ingest", "t3", [randomBytes(100, 9)], { timeoutMs: 5000 });
    const err = await assertRejects(
      () => commitTransfer(nc, "test.ingest", "t3", 2, {}, { timeoutMs: 5000 }),
      KvrelayError,
    );
    assertEquals(err.code, "corrupt_bundle");
    assertEquals(committed, false);
  } finally {
    await close();
  }
});

Deno.test("BundleReceiver.handle() answers not_found for a transfer it does not expect", async () => {
  const { nc, close } = await setup();
  try {
    const err = await assertRejects(
      () => sendBundles(nc, "test.ingest", "nobody", [randomBytes(10, 1)], { timeoutMs: 5000 }),
      KvrelayError,
    );
    assertEquals(err.code, "not_found");
  } finally {
    await close();
  }
});

Deno.test("BundleReceiver rejects a declared bundle size above its configured cap", async () => {
  const { nc, receiver, close } = await setup();
  try {
    receiver.expect("t4", { onBundle: () => Promise.resolve(), onCommit: () => Promise.resolve({}) }, 10_000);
    const h = headers();
    h.set(H_TRANSFER, "t4");
    h.set(H_BUNDLE, "0");
    h.set(H_CHUNK, "0/1");
    h.set(H_BUNDLE_BYTES, String(1 << 30));
    h.set(H_BUNDLE_CRC32, "a".repeat(8));
    const err = await assertRejects(
      () => requestBytes(nc, "test.ingest", new Uint8Array(10), { timeoutMs: 5000, headers: h }),
      KvrelayError,
    );
    assertEquals(err.code, "corrupt_bundle");
  } finally {
    await close();
  }
});
