/**
 * The pooled frame decoder's bookkeeping (no GPU: the codec is the CPU decoder writing into the
 * outputs it is given, as `decodeManyInto` does).
 */
import { assert, assertEquals, assertRejects, assertStrictEquals } from "@std/assert";
import { CorruptStreamError, decode, encode, type Tensor } from "../../shared/codec/mod.ts";
import { OutputPool } from "../../shared/codec/cuda/output_pool.ts";
import { kvFrame } from "../../shared/codec/testdata/gen.ts";
import { f32ValuesOf, pooledFrameDecoder } from "./cuda_frames.ts";

const o = { codec: "fast", errorBound: 1e-2, mode: "rel" } as const;
const limits = { maxElements: 2 ** 24 };

/** `decodeManyInto` and `decodeMany` done by the CPU decoder, counting calls. */
function cpuCodec() {
  const calls = { into: 0, fresh: 0 };
  return {
    calls,
    decodeMany: (streams: Uint8Array[]) => {
      calls.fresh++;
      return Promise.resolve(streams.map((s) => decode(s)));
    },
    decodeManyInto: (streams: Uint8Array[], outs: Float32Array[]) => {
      calls.into++;
      return Promise.resolve(streams.map((s, i): Tensor => {
        const t = decode(s);
        outs[i].set(t.data as Float32Array);
        return { dtype: "f32", shape: t.shape, data: outs[i] };
      }));
    },
  };
}

Deno.test("pooledFrameDecoder() decodes a layer into one pooled buffer, held until given back", async () => {
  const pool = new OutputPool();
  const held: Float32Array[] = [];
  const cuda = cpuCodec();
  const decodeFrames = pooledFrameDecoder(cuda, pool, held);
  const streams = [kvFrame(300, 128, "f32", 1), kvFrame(200, 128, "f32", 2)].map((t) => encode(t, o));
  const got = await decodeFrames(streams, limits);
  assertEquals(held.length, 1);
  got.forEach((t, i) => {
    assertStrictEquals(t.data.buffer, held[0].buffer);
    assertEquals(t.data, decode(streams[i]).data);
  });
  assertEquals(got[1].data.byteOffset, 4 * 300 * 128, "frames one after another");
  // given back, the next layer reuses it
  pool.give(held.pop()!);
  const again = await decodeFrames(streams, limits);
  assertStrictEquals(again[0].data.buffer, got[0].data.buffer);
  assertEquals(cuda.calls, { into: 2, fresh: 0 });
});

Deno.test("pooledFrameDecoder() gives the buffer back on a failure and leaves unreadable headers to decodeMany", async () => {
  const pool = new OutputPool();
  const held: Float32Array[] = [];
  const cuda = cpuCodec();
  const decodeFrames = pooledFrameDecoder(cuda, pool, held);
  const s = encode(kvFrame(64, 128, "f32", 3), o);
  const bad = s.slice();
  bad[bad.length - 3] ^= 0xff; // the digest no longer matches: the decoder throws
  await assertRejects(() => decodeFrames([s, bad], limits), CorruptStreamError);
  assertEquals(held.length, 0);
  assertEquals(pool.size, 1, "back in the pool");
  await assertRejects(() => decodeFrames([s, s.subarray(0, 3)], limits));
  assertEquals(cuda.calls, { into: 1, fresh: 1 });
  assertEquals(pool.size, 1);
});

Deno.test("f32ValuesOf() reads the value count of an f32 stream's header, else undefined", () => {
  assertEquals(f32ValuesOf(encode(kvFrame(10, 8, "f32", 4), o), 2 ** 20), 80);
  assertEquals(f32ValuesOf(encode(kvFrame(10, 8, "f16", 4), o), 2 ** 20), undefined);
  assertEquals(f32ValuesOf(encode(kvFrame(10, 8, "f32", 4), o), 79), undefined, "past maxElements");
  assertEquals(f32ValuesOf(new Uint8Array([1, 2, 3]), 2 ** 20), undefined);
  assert(f32ValuesOf(new Uint8Array(0), 10) === undefined);
});
