import { assertEquals, assertRejects, assertThrows } from "@std/assert";
import { STORIES260K } from "../../tests/_harness/paths.ts";
import { KvrelayError } from "../errors.ts";
import { Llama2cTokenizer, TokenizerFormatError } from "./mod.ts";

const tok = await Llama2cTokenizer.load(STORIES260K.tokenizer);

Deno.test("Llama2cTokenizer.load() reads the 512 pieces of tok512.bin", () => {
  assertEquals(tok.vocabSize, 512);
  assertEquals(tok.piece(3), "<0x00>");
  assertEquals(tok.piece(261), " a");
});

Deno.test("Llama2cTokenizer.encode() merges best-scoring pairs into known ids", () => {
  // " a cat" starts as [" ","a"," ","c","a","t"]. Scores in tok512: " a" -2 (id 261),
  // " c" -21 (280), "at" -35 (294); " ca", "ca", " cat", " a c" are no tokens. Merging the
  // best pair each round gives [" a", " ", "c", "a", "t"] → [" a", " c", "a", "t"] → [" a", " c", "at"].
  assertEquals(tok.encode("a cat"), [1, 261, 280, 294]);
  assertEquals(tok.encode("a cat", { bos: false }), [261, 280, 294]);
  assertEquals(tok.encode(""), [1]);
});

Deno.test("Llama2cTokenizer.encode() falls back to byte+3 for code points without a token", () => {
  // U+1F642 is F0 9F 99 82 in UTF-8; none of it is a piece, and " " + "<0xF0>" is none either.
  assertEquals(tok.encode("🙂"), [1, 410, 0xf0 + 3, 0x9f + 3, 0x99 + 3, 0x82 + 3]);
  assertEquals(tok.decode(tok.encode("🙂").slice(1)), "🙂");
});

Deno.test("Llama2cTokenizer.decode() round-trips text and strips the space after BOS only", () => {
  for (
    const text of ["Once upon a time, there was a little girl.", 'Tom said: "Hi!"\nThe end.', "naïve café"]
  ) {
    const ids = tok.encode(text);
    assertEquals(tok.decode(ids.slice(1)), text);
    assertEquals(tok.decode(ids), text); // control tokens have no text
  }
  assertEquals(tok.decodePiece(1, 261), "a");
  assertEquals(tok.decodePiece(280, 261), " a");
  assertEquals(tok.decode([261, 280, 294], { prevId: 290 }), " a cat");
});

Deno.test("Llama2cTokenizer.parse() rejects truncated and malformed files with a typed error", () => {
  assertThrows(() => Llama2cTokenizer.parse(new Uint8Array(2)), TokenizerFormatError);
  const good = Deno.readFileSync(STORIES260K.tokenizer);
  assertThrows(() => Llama2cTokenizer.parse(good.subarray(0, 1000)), TokenizerFormatError);
  const bad = good.slice();
  new DataView(bad.buffer).setInt32(8, 1 << 20, true); // length of token 0
  assertThrows(() => Llama2cTokenizer.parse(bad), TokenizerFormatError, "bad length");
  assertThrows(() => Llama2cTokenizer.parse(good, { vocabSize: 600 }), TokenizerFormatError);
  assertThrows(() => tok.decode([512]), RangeError);
});

Deno.test("Llama2cTokenizer.load() reports a missing file as bad_request", async () => {
  const err = await assertRejects(() => Llama2cTokenizer.load("/nonexistent/tok.bin"), KvrelayError);
  assertEquals(err.code, "bad_request");
});
