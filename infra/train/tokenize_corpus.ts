/**
 * Tokenizes the corpus written by clean_corpus.py into packed token ids, for shipping ids instead
 * of text to the GPU host (xz packs ids about 5% smaller than the text they come from).
 *
 * usage: deno run -A --cached-only infra/train/tokenize_corpus.ts CORPUS_DIR TOKENIZER_JSON OUT_DIR
 *   writes OUT_DIR/{train,heldout}/<source>.u16: every document's ids (no <bos>) followed by
 *   <eos> (id 1), little-endian uint16; and OUT_DIR/ids.json: tokenizer path, its sha256,
 *   tokens and documents per file.
 * @module
 */
import { Tokenizer } from "@huggingface/tokenizers";

const EOS = 1;

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", bytes);
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function main() {
  const [dir, tokPath, out] = Deno.args;
  if (!dir || !tokPath || !out) {
    throw new Error("usage: tokenize_corpus.ts CORPUS_DIR TOKENIZER_JSON OUT_DIR");
  }
  const tokBytes = await Deno.readFile(tokPath);
  const tokenizer = new Tokenizer(JSON.parse(new TextDecoder().decode(tokBytes)), {});
  const vocab = tokenizer.get_vocab(true).size;
  if (vocab > 65536) throw new RangeError(`vocabulary of ${vocab} does not fit in uint16`);
  const files: Record<string, { docs: number; tokens: number }> = {};
  for (const split of ["train", "heldout"]) {
    await Deno.mkdir(`${out}/${split}`, { recursive: true });
    const names = [...Deno.readDirSync(`${dir}/${split}`)].map((e) => e.name).filter((n) =>
      n.endsWith(".txt")
    )
      .sort();
    for (const name of names) {
      const docs = (await Deno.readTextFile(`${dir}/${split}/${name}`)).split("\n\n").filter((d) => d.trim());
      const ids: number[] = [];
      for (const d of docs) {
        for (const id of tokenizer.encode(d, { add_special_tokens: false }).ids) ids.push(id);
        ids.push(EOS);
      }
      const rel = `${split}/${name.replace(/\.txt$/, ".u16")}`;
      await Deno.writeFile(`${out}/${rel}`, new Uint8Array(Uint16Array.from(ids).buffer));
      files[rel] = { docs: docs.length, tokens: ids.length - docs.length };
      console.log(
        `${rel.padEnd(32)} docs ${String(docs.length).padStart(6)} tokens ${ids.length - docs.length}`,
      );
    }
  }
  await Deno.writeTextFile(
    `${out}/ids.json`,
    JSON.stringify(
      { tokenizer: tokPath, tokenizerSha256: await sha256(tokBytes), eos: EOS, files },
      null,
      1,
    ) +
      "\n",
  );
}

if (import.meta.main) await main();
