import { assertEquals, assertRejects } from "@std/assert";
import { STORIES260K } from "../../tests/_harness/paths.ts";
import { KvrelayError } from "../errors.ts";
import { HfTokenizer, Llama2cTokenizer } from "./mod.ts";
import { DigitsPreTokenizer } from "@huggingface/tokenizers";

const llama2c = await Llama2cTokenizer.load(STORIES260K.tokenizer);

/**
 * tok512.bin as a Llama-2 style `tokenizer.json` (what transformers' LlamaConverter writes):
 * "▁" for spaces, merges ordered by the merged piece's score, byte fallback, BOS template.
 */
function tok512AsTokenizerJson(): object {
  const n = llama2c.vocabSize;
  const piece = (i: number) => {
    if (i === 0) return "<unk>";
    if (i === 1) return "<s>";
    if (i === 2) return "</s>";
    const bytes = Uint8Array.from(llama2c.piece(i), (c) => c.charCodeAt(0));
    return /^<0x[0-9A-F]{2}>$/.test(llama2c.piece(i))
      ? llama2c.piece(i)
      : new TextDecoder().decode(bytes).replaceAll(" ", "▁");
  };
  const vocab: Record<string, number> = {};
  for (let i = 0; i < n; i++) if (!(piece(i) in vocab)) vocab[piece(i)] = i;
  // Merges: every split of a piece into two pieces, ranked by the merged piece's id
  // (tok512 scores fall with the id, so id order is score order).
  const merges: string[] = [];
  for (let i = 3; i < n; i++) {
    const p = piece(i);
    if (p.startsWith("<0x")) continue;
    const chars = [...p];
    for (let k = 1; k < chars.length; k++) {
      const [l, r] = [chars.slice(0, k).join(""), chars.slice(k).join("")];
      if (l in vocab && r in vocab) merges.push(`${l} ${r}`);
    }
  }
  const special = (id: number, content: string) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  return {
    version: "1.0",
    added_tokens: [special(0, "<unk>"), special(1, "<s>"), special(2, "</s>")],
    normalizer: {
      type: "Sequence",
      normalizers: [{ type: "Prepend", prepend: "▁" }, {
        type: "Replace",
        pattern: { String: " " },
        content: "▁",
      }],
    },
    pre_tokenizer: null,
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      special_tokens: { "<s>": { id: "<s>", ids: [1], tokens: ["<s>"] } },
    },
    decoder: {
      type: "Sequence",
      decoders: [
        { type: "Replace", pattern: { String: "▁" }, content: " " },
        { type: "ByteFallback" },
        { type: "Fuse" },
        { type: "Strip", content: " ", start: 1, stop: 0 },
      ],
    },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: "<unk>",
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      vocab,
      merges,
    },
  };
}

const hf = new HfTokenizer(tok512AsTokenizerJson(), { config: { bos_token: "<s>", eos_token: "</s>" } });

Deno.test("HfTokenizer.encode() matches the llama2.c tokenizer on the same vocabulary", () => {
  assertEquals([hf.bosId, hf.eosId, hf.vocabSize], [1, 2, 512]);
  for (
    const text of [
      "a cat",
      "Once upon a time, there was a little girl named Lily.",
      "Tom's dog ran fast!",
      "é🙂",
    ]
  ) {
    assertEquals(hf.encode(text), llama2c.encode(text), text);
    assertEquals(hf.encode(text, { bos: false }), llama2c.encode(text, { bos: false }), text);
  }
});

Deno.test("HfTokenizer.decode() and decodePiece() agree with llama2.c pieces", () => {
  const ids = llama2c.encode("Once upon a time, there was a cat.").slice(1);
  assertEquals(hf.decode(ids), llama2c.decode(ids));
  let streamed = "";
  let prev = hf.bosId;
  for (const id of ids) {
    streamed += hf.decodePiece(prev, id);
    prev = id;
  }
  assertEquals(streamed, "Once upon a time, there was a cat.");
  assertEquals(hf.decode(ids.slice(2), { prevId: ids[1] }), llama2c.decode(ids.slice(2), { prevId: ids[1] }));
});

Deno.test("HfTokenizer.load() reports a missing file as bad_request", async () => {
  const err = await assertRejects(() => HfTokenizer.load("/nonexistent/tokenizer.json"), KvrelayError);
  assertEquals(err.code, "bad_request");
});

Deno.test("the Digits pre-tokenizer splits off every Unicode number, as the Rust library that trains our models does", () => {
  const one = new DigitsPreTokenizer({ type: "Digits", individual_digits: true });
  assertEquals(one.pre_tokenize_text("x½y²12٣ z"), ["x", "½", "y", "²", "1", "2", "٣", " z"]);
  const runs = new DigitsPreTokenizer({ type: "Digits", individual_digits: false });
  assertEquals(runs.pre_tokenize_text("a12½b"), ["a", "12½", "b"]);
});
