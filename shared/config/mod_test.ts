import { assertEquals, assertThrows } from "@std/assert";
import { KvrelayError } from "../errors.ts";
import { loadConfig } from "./mod.ts";

Deno.test("loadConfig() reads the hand-off settings and refuses ones that would do nothing or be cut", () => {
  const c = loadConfig({ KVRELAY_LINK_GBPS: "10", KVRELAY_LINK_RTT_MS: "0.5", KVRELAY_CODEC_THREADS: "4" });
  assertEquals(c.link, { gbps: 10, rttMs: 0.5 });
  assertEquals(c.codecThreads, 4);
  assertEquals(loadConfig({}).link, { gbps: undefined, rttMs: 0 });
  for (
    const [env, param] of [
      [{ KVRELAY_LINK_RTT_MS: "2" }, "KVRELAY_LINK_RTT_MS"],
      [{ KVRELAY_LINK_GBPS: "0" }, "KVRELAY_LINK_GBPS"],
      [{ KVRELAY_CODEC_THREADS: "2.5" }, "KVRELAY_CODEC_THREADS"],
      [{ KVRELAY_PIPELINE: "yes" }, "KVRELAY_PIPELINE"],
    ] as const
  ) {
    const err = assertThrows(() => loadConfig(env), KvrelayError);
    assertEquals(err.param, param);
  }
});

Deno.test("loadConfig() takes a CUDA device index, 0 unless set, and refuses one that is not an index", () => {
  assertEquals(loadConfig({}).cudaDevice, 0);
  assertEquals(loadConfig({ KVRELAY_CODEC_DEVICE: "cuda", KVRELAY_CUDA_DEVICE: "1" }).cudaDevice, 1);
  for (const bad of ["-1", "0.5", "gpu1"]) {
    const err = assertThrows(
      () => loadConfig({ KVRELAY_CODEC_DEVICE: "cuda", KVRELAY_CUDA_DEVICE: bad }),
      KvrelayError,
    );
    assertEquals(err.param, "KVRELAY_CUDA_DEVICE");
  }
  // without the CUDA codec they would do nothing
  for (const key of ["KVRELAY_CUDA_DEVICE", "KVRELAY_CUDA_LIB"]) {
    const err = assertThrows(() => loadConfig({ [key]: "1" }), KvrelayError);
    assertEquals(err.param, key);
  }
});

Deno.test("loadConfig() takes prefill's layer groups: auto unless a count is given", () => {
  assertEquals(loadConfig({}).prefillGroups, "auto");
  assertEquals(loadConfig({ KVRELAY_PREFILL_GROUPS: "auto" }).prefillGroups, "auto");
  assertEquals(loadConfig({ KVRELAY_PREFILL_GROUPS: "4" }).prefillGroups, 4);
  for (const bad of ["0", "1.5", "all"]) {
    const err = assertThrows(() => loadConfig({ KVRELAY_PREFILL_GROUPS: bad }), KvrelayError);
    assertEquals(err.param, "KVRELAY_PREFILL_GROUPS");
  }
});

Deno.test("loadConfig() takes the GPU a process is pinned to, and refuses a CUDA index beside it", () => {
  assertEquals(loadConfig({}).gpu, undefined);
  assertEquals(loadConfig({ KVRELAY_GPU: "1" }).gpu, 1);
  assertEquals(
    loadConfig({ KVRELAY_GPU: "1", KVRELAY_CODEC_DEVICE: "cuda", KVRELAY_CUDA_DEVICE: "0" }).gpu,
    1,
  );
  for (const bad of ["-1", "0.5", "gpu1"]) {
    assertEquals(assertThrows(() => loadConfig({ KVRELAY_GPU: bad }), KvrelayError).param, "KVRELAY_GPU");
  }
  assertEquals(
    assertThrows(() => loadConfig({ KVRELAY_GPU_SELECT_LIST: "1" }), KvrelayError).param,
    "KVRELAY_GPU_SELECT_LIST",
  );
  assertEquals(loadConfig({ KVRELAY_GPU: "0", KVRELAY_GPU_SELECT_LIST: "1" }).gpu, 0);
  // the one GPU left visible is CUDA's device 0
  const err = assertThrows(
    () => loadConfig({ KVRELAY_GPU: "1", KVRELAY_CODEC_DEVICE: "cuda", KVRELAY_CUDA_DEVICE: "1" }),
    KvrelayError,
  );
  assertEquals(err.param, "KVRELAY_CUDA_DEVICE");
});

Deno.test("loadConfig() takes cuda as a codec device only, with the library's path", () => {
  const c = loadConfig({ KVRELAY_CODEC_DEVICE: "cuda", KVRELAY_CUDA_LIB: "/opt/kvrelay/libkvrelay_cuda.so" });
  assertEquals([c.codecDevice, c.cudaLib], ["cuda", "/opt/kvrelay/libkvrelay_cuda.so"]);
  assertEquals(loadConfig({}).cudaLib, undefined);
  for (
    const [env, param] of [[{ KVRELAY_DEVICE: "cuda" }, "KVRELAY_DEVICE"], [
      { KVRELAY_CODEC_DEVICE: "cu" },
      "KVRELAY_CODEC_DEVICE",
    ]] as const
  ) {
    const err = assertThrows(() => loadConfig(env), KvrelayError);
    assertEquals(err.param, param);
  }
});

Deno.test("loadConfig() reads the canary's share of requests and the head floor, and refuses them out of range", () => {
  assertEquals(loadConfig({}).canaryRate, 0);
  assertEquals(loadConfig({ KVRELAY_CANARY_RATE: "0.01" }).canaryRate, 0.01);
  assertEquals(loadConfig({ KVRELAY_HEAD_FLOOR: "128" }).kv.headFloor, 128);
  for (
    const [env, param] of [
      [{ KVRELAY_CANARY_RATE: "1.5" }, "KVRELAY_CANARY_RATE"],
      [{ KVRELAY_CANARY_RATE: "-0.1" }, "KVRELAY_CANARY_RATE"],
      [{ KVRELAY_HEAD_FLOOR: "1.5" }, "KVRELAY_HEAD_FLOOR"],
    ] as const
  ) {
    const err = assertThrows(() => loadConfig(env), KvrelayError);
    assertEquals(err.param, param);
  }
});
