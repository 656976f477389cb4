import { assertEquals } from "@std/assert";
import { firstTokens, samplesSource } from "./kv_source.ts";
import { KV_SAMPLES_DIR } from "../../_harness/paths.ts";

Deno.test("firstTokens() gives the whole text's first n tokens while tokenizing only a prefix", () => {
  const seen: number[] = [];
  const words = (t: string) => (seen.push(t.length), t.split(" ").filter((w) => w).map((w) => w.length));
  const text = Array.from({ length: 5000 }, (_, i) => "x".repeat(1 + (i % 7))).join(" ");
  assertEquals(firstTokens(words, text, 100), words(text).slice(0, 100));
  assertEquals(seen[0] < text.length / 4, true, "a prefix first");
  assertEquals(firstTokens(words, "a bb", 10), [1, 2], "all there is when the text is short");
});

Deno.test("samplesSource() reads every K/V pair of a folder as per-(layer, KV head) frames", () => {
  const s = samplesSource(`${KV_SAMPLES_DIR}/stories260K`);
  assertEquals(s.name, "stories260K");
  assertEquals(s.shape, [5, 512, 4, 8]);
  assertEquals(s.samples.length, 6);
  assertEquals(s.frames.length, 6 * 2 * 5 * 4);
  assertEquals(s.frames.filter((f) => f.kind === "V" && f.sample === "sample-03" && f.layer === 2).length, 4);
});
