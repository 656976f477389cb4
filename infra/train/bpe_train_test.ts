/**
 * infra/train/bpe_train.py, the pure-Python trainer of tokenizer.py's byte-level BPE: trained on a small
 * corpus in the large corpus' train/ + heldout/ layout with a small vocabulary, its tokenizer.json must
 * be laid out as kvrelay-tiny's (written by `tokenizers`), load in the runtime's HfTokenizer, keep the
 * specials and digits apart, round-trip any text and hold the corpus' frequent words as one token each.
 *
 * Needs python3 (standard library only); where there is none the test is reported as ignored.
 */
import { assert, assertEquals } from "@std/assert";
import { HfTokenizer } from "../../shared/tokenizer/mod.ts";
import { REPO_DIR } from "../../tests/_harness/paths.ts";

async function python(): Promise<string | undefined> {
  for (const py of ["python3", "/usr/bin/python3"]) {
    try {
      const r = await new Deno.Command(py, { args: ["-c", ""], stdout: "null", stderr: "null" }).output();
      if (r.success) return py;
    } catch { /* not installed */ }
  }
  return undefined;
}

const PY = await python();

/** Paragraphs of made-up prose: four frequent words (one accented), numbers and punctuation. */
function corpus(n: number, seed: number): string[] {
  const words = ["zephyr", "marmot", "quorum", "café", "of", "in", "lantern", "brisk", "ochre", "tundra"];
  let s = seed;
  const rand = (k: number) => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return Math.floor((s / 2147483648) * k);
  };
  const out: string[] = [];
  for (let p = 0; p < n; p++) {
    const sent: string[] = [];
    for (let w = 0; w < 40; w++) {
      const r = rand(20);
      sent.push(r < 10 ? words[r % 4] : r < 18 ? words[r - 6] : String(rand(1000)));
    }
    out.push(`The ${sent.join(" ")}, (${rand(100)}%) — “done”.`);
  }
  return out;
}

Deno.test({
  name: "bpe_train.py's tokenizer.json: tokenizers' layout, loads in HfTokenizer, round-trips",
  ignore: PY === undefined,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "kvrelay-bpe-" });
    try {
      for (const [split, n, seed] of [["train", 600, 1], ["heldout", 20, 2]] as const) {
        await Deno.mkdir(`${dir}/corpus/${split}`, { recursive: true });
        // documents of 5 paragraphs, one paragraph a line, an empty line between documents
        const paras = corpus(n, seed);
        const docs = Array.from({ length: n / 5 }, (_, i) => paras.slice(5 * i, 5 * i + 5).join("\n"));
        await Deno.writeTextFile(`${dir}/corpus/${split}/made_up.txt`, docs.join("\n\n") + "\n");
      }
      const run = await new Deno.Command(PY!, {
        args: [
          `${REPO_DIR}/infra/train/bpe_train.py`,
          `${dir}/corpus`,
          `${dir}/tok/tokenizer.json`,
          "400",
          "512",
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const log = new TextDecoder().decode(run.stdout) + new TextDecoder().decode(run.stderr);
      assert(run.success, `bpe_train.py failed:\n${log}`);

      const json = JSON.parse(await Deno.readTextFile(`${dir}/tok/tokenizer.json`));
      const tiny = JSON.parse(await Deno.readTextFile(`${REPO_DIR}/infra/model/kvrelay-tiny/tokenizer.json`));
      // all but the learned vocabulary and merges as `tokenizers` wrote kvrelay-tiny's
      const { vocab, merges, ...model } = json.model;
      const { vocab: tinyVocab, merges: _, ...tinyModel } = tiny.model;
      assertEquals({ ...json, model }, { ...tiny, model: tinyModel });
      // the specials, then the 256 byte characters in the order `tokenizers` gave them
      // (sorted by id: Object.entries() puts the digit tokens' keys "0".."9" first)
      const byId = (v: Record<string, number>) => Object.entries(v).sort((x, y) => x[1] - y[1]);
      const ids = byId(vocab);
      assertEquals(ids.map(([, i]) => i), [...Array(400).keys()]);
      assertEquals(ids.slice(0, 259), byId(tinyVocab).slice(0, 259));
      assertEquals(merges.length, 400 - 259);
      for (const [a, b] of merges as [string, string][]) {
        assert(a in vocab && b in vocab && a + b in vocab, `merge ${a} ${b}`);
      }
      const config = JSON.parse(await Deno.readTextFile(`${dir}/tok/tokenizer_config.json`));
      assertEquals([config.bos_token, config.eos_token, config.pad_token, config.model_max_length], [
        "<bos>",
        "<eos>",
        "<pad>",
        512,
      ]);

      const tok = await HfTokenizer.load(`${dir}/tok/tokenizer.json`);
      assertEquals([tok.vocabSize, tok.bosId, tok.eosId], [400, 0, 1]);
      const heldout = (await Deno.readTextFile(`${dir}/corpus/heldout/made_up.txt`)).split("\n\n");
      for (
        const text of [
          "Question: Tom has 12 apples.\nSolution: 12 + 7 = 19.\nAnswer: 19",
          " leading space, trailing spaces  \n\n\ttab, CRLF\r\nend",
          "naïve café — “quotes”, 中文, emoji 😀, ½ ² ٣, x_y = f(a)[0] ** 2; don't 'em",
          ...heldout,
        ]
      ) {
        const ids = tok.encode(text);
        assertEquals(ids[0], 0);
        assert(ids.slice(1).every((i) => i > 2), text);
        assertEquals(tok.decode(ids.slice(1)), text);
      }
      const pieces = (text: string) => tok.encode(text, { bos: false }).map((i) => tok.decode([i]));
      assertEquals(pieces(" 2024 1234567890"), [" ", "2", "0", "2", "4", " ", ..."1234567890"]);
      for (const w of [" zephyr", " marmot", " quorum", " café", "The"]) assertEquals(pieces(w), [w]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
