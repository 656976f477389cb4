"""Prints the per-source table of CORPUS.md (markdown) from the files the pipeline writes.

usage: python3 corpus_table.py OUT_DIR [COUNT_JSON] [BPE_JSON] [XZ_DIR]
  OUT_DIR:    .cache/corpus/out (manifest.json, packages.tsv)
  COUNT_JSON: count_tokens.ts --out (kvrelay-tiny's tokenizer)
  BPE_JSON:   bpe_estimate.py --out (BPE trained on the corpus; the 8192 column is used)
  XZ_DIR:     .cache/corpus/xz (pack_corpus.sh's compressed copies)
"""
import json
import sys
from pathlib import Path


def main(out: str, count: str | None, bpe: str | None, xz: str | None):
    man = json.loads(Path(out, "manifest.json").read_text())
    versions = {}
    tsv = Path(out, "packages.tsv")
    if tsv.exists():
        for line in tsv.read_text().splitlines()[1:]:
            p, v, src, _ = line.split("\t")
            versions[p] = (v, src)
    tiny = {}
    if count:
        for r in json.loads(Path(count).read_text())["rows"]:
            tiny[(r["split"], r["source"])] = r["tokens"]
    bpe8 = {}
    if bpe:
        b = json.loads(Path(bpe).read_text())
        for r in b["8192"]["rows"]:
            bpe8[(r["split"], r["source"])] = r["tokens"]
    print("| source | packages (version) | docs train+held | M chars train | tokens kvrelay-tiny | tokens 8k BPE | xz MB |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    tot = [0, 0, 0, 0, 0, 0]
    for name, m in man.items():
        pk = ", ".join(f"{p} ({versions[p][0]})" if p in versions else p for p in m["packages"])
        t = tiny.get(("train", name), 0) + tiny.get(("heldout", name), 0)
        e = bpe8.get(("train", name), 0) + bpe8.get(("heldout", name), 0)
        z = sum((Path(xz, s, f"{name}.txt.xz").stat().st_size
                 if xz and Path(xz, s, f"{name}.txt.xz").exists() else 0) for s in ("train", "heldout"))
        docs = f"{m['docs_train']:,}+{m['docs_heldout']:,}"
        print(f"| {name} | {pk} | {docs} | {m['chars_train'] / 1e6:.2f} | {t / 1e6:.2f} M | {e / 1e6:.2f} M "
              f"| {z / 1e6:.2f} |")
        for i, v in enumerate((m["docs_train"], m["docs_heldout"], m["chars_train"], t, e, z)):
            tot[i] += v
    print(f"| **total** | | {tot[0]:,}+{tot[1]:,} | {tot[2] / 1e6:.2f} | {tot[3] / 1e6:.2f} M | "
          f"{tot[4] / 1e6:.2f} M | {tot[5] / 1e6:.2f} |")


if __name__ == "__main__":
    a = sys.argv[1:] + [None] * 4
    main(a[0], a[1], a[2], a[3])
