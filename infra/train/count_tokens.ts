/**
 * Counts the tokens of the training corpus written by clean_corpus.py with an existing
 * `tokenizer.json`, per source and split, through the same JS tokenizer kvrelay serves with.
 *
 * usage: deno run -A --cached-only infra/train/count_tokens.ts CORPUS_DIR TOKENIZER_JSON [--every N] [--out F]
 *   CORPUS_DIR holds train/<source>.txt and heldout/<source>.txt (documents separated by an empty line).
 *   --every N encodes only every N-th document of each file and scales the count by chars
 *   (tokens = chars x measured tokens-per-char), for a quick estimate.
 * Token counts exclude <bos>/<eos>; the packed training stream adds two per document.
 * @module
 */
import { Tokenizer } from "@huggingface/tokenizers";

interface Row {
  source: string;
  split: string;
  docs: number;
  chars: number;
  tokens: number;
  sampledDocs: number;
}

function parseArgs(args: string[]): { dir: string; tok: string; every: number; out?: string } {
  const pos: string[] = [];
  let every = 1;
  let out: string | undefined;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--every") every = Number(args[++i]);
    else if (args[i] === "--out") out = args[++i];
    else pos.push(args[i]);
  }
  if (pos.length !== 2 || !Number.isInteger(every) || every < 1) {
    throw new Error("usage: count_tokens.ts CORPUS_DIR TOKENIZER_JSON [--every N] [--out FILE]");
  }
  return { dir: pos[0], tok: pos[1], every, out };
}

async function main() {
  const { dir, tok, every, out } = parseArgs(Deno.args);
  const tokenizer = new Tokenizer(JSON.parse(await Deno.readTextFile(tok)), {});
  const rows: Row[] = [];
  for (const split of ["train", "heldout"]) {
    const names = [...Deno.readDirSync(`${dir}/${split}`)].map((e) => e.name).filter((n) =>
      n.endsWith(".txt")
    )
      .sort();
    for (const name of names) {
      const docs = (await Deno.readTextFile(`${dir}/${split}/${name}`)).split("\n\n").filter((d) => d.trim());
      let chars = 0, sampledChars = 0, sampledTokens = 0, sampled = 0;
      docs.forEach((d, i) => {
        chars += d.length;
        if (i % every !== 0) return;
        sampled++;
        sampledChars += d.length;
        sampledTokens += tokenizer.encode(d, { add_special_tokens: false }).ids.length;
      });
      const tokens = every === 1
        ? sampledTokens
        : Math.round(chars * sampledTokens / Math.max(1, sampledChars));
      rows.push({
        source: name.replace(/\.txt$/, ""),
        split,
        docs: docs.length,
        chars,
        tokens,
        sampledDocs: sampled,
      });
      console.log(
        `${split.padEnd(8)} ${name.replace(/\.txt$/, "").padEnd(22)} docs ${
          String(docs.length).padStart(6)
        } ` +
          `chars ${chars.toLocaleString("en-US").padStart(12)} tokens ${
            tokens.toLocaleString("en-US").padStart(11)
          } ` +
          `chars/token ${(chars / Math.max(1, tokens)).toFixed(2)}`,
      );
    }
  }
  const sum = (split: string, k: "chars" | "tokens" | "docs") =>
    rows.filter((r) => r.split === split).reduce((a, r) => a + r[k], 0);
  const total = {
    train: { docs: sum("train", "docs"), chars: sum("train", "chars"), tokens: sum("train", "tokens") },
    heldout: {
      docs: sum("heldout", "docs"),
      chars: sum("heldout", "chars"),
      tokens: sum("heldout", "tokens"),
    },
  };
  console.log(`total    train ${JSON.stringify(total.train)} heldout ${JSON.stringify(total.heldout)}`);
  if (out) {
    await Deno.writeTextFile(out, JSON.stringify({ tokenizer: tok, every, rows, total }, null, 1) + "\n");
  }
}

if (import.meta.main) await main();
