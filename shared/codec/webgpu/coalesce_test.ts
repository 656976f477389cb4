import { assert, assertEquals, assertRejects } from "@std/assert";
import { encode, type EncodeOptions, type Tensor } from "../mod.ts";
import { kvFrame } from "../testdata/gen.ts";
import { coalesce } from "./coalesce.ts";
import { createGpuCodec } from "./mod.ts";

const o: EncodeOptions = { codec: "kvsort", errorBound: 1e-2 };
/** A frame of `n` values whose first value is its id. */
const frame = (id: number, n = 4): Tensor => {
  const data = new Float32Array(n);
  data[0] = id;
  return { dtype: "f32", shape: [1, n], data };
};
const ids = (frames: Tensor[]) => frames.map((f) => f.data[0]);

/** A fake batch encoder: records each batch's frame ids, gives each id back; the test releases batches. */
function fakeInner(fail: (id: number) => unknown = () => undefined) {
  const batches: number[][] = [];
  const release: (() => void)[] = [];
  const inner = (frames: Tensor[]) => {
    batches.push(ids(frames));
    return new Promise<PromiseSettledResult<number>[]>((resolve) => {
      release.push(() =>
        resolve(frames.map((f) => {
          const reason = fail(f.data[0]);
          return reason === undefined
            ? { status: "fulfilled", value: f.data[0] }
            : { status: "rejected", reason };
        }))
      );
    });
  };
  /** Waits until batch `i` has been handed to the encoder, then lets it finish. */
  const finish = async (i: number) => {
    while (release.length <= i) await new Promise((r) => setTimeout(r, 0));
    release[i]();
  };
  return { inner, batches, finish };
}

const values = (r: PromiseSettledResult<number>[]) =>
  r.map((x) => x.status === "fulfilled" ? x.value : `rejected: ${(x.reason as Error).message}`);

Deno.test("coalesce() sends the frames that arrive during a batch together in the next batch", async () => {
  const fake = fakeInner();
  const enc = coalesce(fake.inner);
  const a = enc([frame(1), frame(2)], [o, o]);
  const b = enc([frame(3), frame(4), frame(5)], [o, o, o]);
  const c = enc([frame(6)], [o]);
  assertEquals(fake.batches, [[1, 2]]); // b and c wait while a's batch runs
  await fake.finish(0);
  assertEquals(values(await a), [1, 2]);
  await fake.finish(1);
  assertEquals(values(await b), [3, 4, 5]);
  assertEquals(values(await c), [6]);
  assertEquals(fake.batches, [[1, 2], [3, 4, 5, 6]]);
  assertEquals(await enc([], []), []);
  await assertRejects(() => enc([frame(7)], []), TypeError);
});

Deno.test("coalesce() cuts batches at maxValues oldest first, loses and repeats no frame, keeps each caller's order", async () => {
  const fake = fakeInner();
  const enc = coalesce(fake.inner, { maxValues: 20 });
  let id = 0;
  const len = new Map<number, number>();
  const sizes = [3, 1, 7, 2, 5, 1, 4, 6];
  const lens = [4, 8, 16, 4, 32, 4, 12, 4]; // a 32-value frame is over the cap and goes alone
  const calls = sizes.map((n, c) => {
    const frames = Array.from({ length: n }, (_, j) => frame(++id, lens[(c + j) % lens.length]));
    frames.forEach((f) => len.set(f.data[0], f.data.length));
    return { want: ids(frames), got: enc(frames, frames.map(() => o)) };
  });
  for (let done = 0; fake.batches.flat().length < id || done < fake.batches.length;) {
    await fake.finish(done++);
  }
  for (const c of calls) assertEquals(values(await c.got), c.want);
  assertEquals(fake.batches.flat(), Array.from({ length: id }, (_, i) => i + 1)); // FIFO, each once
  assert(fake.batches.length >= 3);
  for (const b of fake.batches) {
    const n = b.reduce((s, i) => s + len.get(i)!, 0);
    assert(n <= 20 || b.length === 1, `batch ${b} holds ${n} values`);
  }
});

Deno.test("coalesce() keeps a failing frame or batch to its own callers", async () => {
  const fake = fakeInner((id) => id === 4 ? new RangeError("bad bound") : undefined);
  let throwNext = false;
  const enc = coalesce((frames: Tensor[]) => {
    if (throwNext) {
      throwNext = false;
      return Promise.reject(new Error("device lost"));
    }
    return fake.inner(frames);
  });
  const a = enc([frame(1)], [o]);
  const b = enc([frame(2), frame(3)], [o, o]);
  const c = enc([frame(4), frame(5)], [o, o]);
  await fake.finish(0);
  await a;
  await fake.finish(1);
  assertEquals(values(await b), [2, 3]);
  assertEquals(values(await c), ["rejected: bad bound", 5]);
  throwNext = true;
  const d = enc([frame(6)], [o]); // the whole batch fails
  assertEquals(values(await d), ["rejected: device lost"]);
  const e = enc([frame(7)], [o]); // and the next one runs
  await fake.finish(2);
  assertEquals(values(await e), [7]);
});

Deno.test({
  name:
    "coalesce() over GpuCodec.encodeManySettled gives 8 concurrent callers their CPU streams in two batches",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const g = await createGpuCodec({ timeoutMs: 20_000 });
    try {
      let calls = 0;
      const enc = coalesce((f, opts) => (calls++, g.encodeManySettled(f, opts)));
      const requests = Array.from(
        { length: 8 },
        (_, r) => Array.from({ length: 3 }, (_, i) => kvFrame(32, 64, "f16", 100 + 3 * r + i)),
      );
      const opts: EncodeOptions = { codec: "kvsort", errorBound: 1e-2, indexShare: 8 };
      const bad: EncodeOptions = { codec: "kvsort", errorBound: -1 }; // request 5's middle frame
      const optsOf = (r: number) => requests[r].map((_, i) => r === 5 && i === 1 ? bad : opts);
      const submit = GPUQueue.prototype.submit;
      let submits = 0;
      GPUQueue.prototype.submit = function (this: GPUQueue, buffers: GPUCommandBuffer[]) {
        submits++;
        return submit.call(this, buffers);
      };
      let got;
      try {
        got = await Promise.all(requests.map((frames, r) => enc(frames, optsOf(r))));
      } finally {
        GPUQueue.prototype.submit = submit;
      }
      assertEquals(calls, 2); // the first request alone, then the seven that arrived meanwhile
      assertEquals(submits, 6); // three per batch
      got.forEach((res, r) =>
        res.forEach((x, i) => {
          if (r === 5 && i === 1) {
            assert(x.status === "rejected" && x.reason instanceof RangeError);
          } else {
            assert(x.status === "fulfilled");
            assertEquals(x.value, encode(requests[r][i], opts), `request ${r} frame ${i}`);
          }
        })
      );
    } finally {
      g.destroy();
    }
  },
});
