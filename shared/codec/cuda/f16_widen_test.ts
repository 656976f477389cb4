/**
 * The device's fp16 → fp32 widening (./f16_widen.h `widenF16Bits`, which kWidenF16 runs) against
 * shared/dtype `f16Table32` for all 65,536 patterns: the header is plain C++ without nvcc, so g++
 * builds testdata/f16_widen_check.cpp here and it compares the formula with the table dumped from
 * JS. Skipped, saying why, where there is no g++.
 */
import { assertEquals } from "@std/assert";
import { f16Table32 } from "../../dtype/mod.ts";

const CHECK = new URL("./testdata/f16_widen_check.cpp", import.meta.url).pathname;

const noCompiler: string | undefined = (() => {
  try {
    const ok = new Deno.Command("g++", { args: ["--version"], stdout: "null", stderr: "null" }).outputSync();
    return ok.success ? undefined : "g++ --version failed";
  } catch {
    return "no g++";
  }
})();

/** Builds the check once per test into `dir`; its path. */
async function build(dir: string): Promise<string> {
  const bin = `${dir}/f16_widen_check`;
  const cc = await new Deno.Command("g++", {
    args: ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Werror", "-o", bin, CHECK],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals([cc.code, new TextDecoder().decode(cc.stderr)], [0, ""]);
  return bin;
}

/** The check's exit code and output on `table` (65,536 fp32 bit patterns). */
async function runCheck(bin: string, dir: string, table: Uint32Array): Promise<[number, string]> {
  const path = `${dir}/table.bin`;
  const le = new Uint8Array(4 * table.length);
  const dv = new DataView(le.buffer);
  table.forEach((b, i) => dv.setUint32(4 * i, b, true));
  await Deno.writeFile(path, le);
  const run = await new Deno.Command(bin, { args: [path], stdout: "piped", stderr: "piped" }).output();
  return [run.code, new TextDecoder().decode(run.stdout).trim()];
}

const tableBits = () => new Uint32Array(f16Table32().slice().buffer);

/** A test that builds the check in a temporary folder, where g++ is there. */
function checkTest(
  name: string,
  fn: (run: (table: Uint32Array) => Promise<[number, string]>) => Promise<void>,
) {
  Deno.test({
    name: name + (noCompiler ? ` (skipped: ${noCompiler})` : ""),
    ignore: noCompiler !== undefined,
    async fn() {
      const dir = await Deno.makeTempDir();
      try {
        const bin = await build(dir);
        await fn((table) => runCheck(bin, dir, table));
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}

checkTest("widenF16Bits() gives f16Table32's bits for every fp16 pattern", async (run) => {
  assertEquals(await run(tableBits()), [0, "all 65536 ok"]);
});

checkTest(
  "the widening check catches a NaN payload and a lost -0 (it compares bits, not values)",
  async (run) => {
    const t = tableBits();
    t[0xfe01] = 0xffc02000; // this NaN with its sign and payload kept
    t[0x8000] = 0; // -0 as +0
    const [code, out] = await run(t);
    assertEquals(code, 1);
    assertEquals(out.split("\n"), [
      "f16 8000: widened 80000000, table 00000000",
      "f16 fe01: widened 7fc00000, table ffc02000",
      "2 of 65536 differ",
    ]);
  },
);
