"""Estimates how many tokens the corpus has under a byte-level BPE trained on it, without the
`tokenizers` package (not installable here; the real tokenizer is trained on the device by
tokenizer.py). Pure Python: word counts, then BPE merges on the word types.

usage: python3 bpe_estimate.py CORPUS_DIR VOCAB [VOCAB ...] [--out FILE] [--save-merges F | --merges F]
  CORPUS_DIR: train/*.txt and heldout/*.txt from clean_corpus.py.
  --save-merges F: also write the learned merges (JSON list of [a, b] as latin-1 strings).
  --merges F: learn nothing; count CORPUS_DIR with merges saved before (e.g. for sources added
  after the tokenizer was trained: a slight overestimate against training on everything).

Pre-tokenization imitates tokenizer.py: digits one per token, then a GPT-2-style split
(optional leading space + letters, or + punctuation run, whitespace alone). With 3 special
tokens and 256 byte symbols, VOCAB - 259 merges are learned (pair frequency >= 2), and each
word type is encoded with those merges by rank, as Hugging Face BPE does. Counts exclude
<bos>/<eos>. Differences from the device tokenizer (regex details, tie-breaking) move the
count by a few percent at most.
"""
from __future__ import annotations

import heapq
import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

PRETOK = re.compile(r"""'(?:s|t|re|ve|m|ll|d)| ?[^\W\d_]+|\d| ?[^\s\w]+|\s+(?!\S)|\s+|_+""")


def word_counts(paths: list[Path]) -> Counter:
    c: Counter = Counter()
    for p in paths:
        text = p.read_text(encoding="utf-8")
        for doc in text.split("\n\n"):
            c.update(PRETOK.findall(doc.strip("\n")))
    return c


def train(counts: Counter, vocab: int) -> dict[tuple[bytes, bytes], int]:
    words = [[bytes([b]) for b in w.encode("utf-8")] for w in counts]
    freq = list(counts.values())
    pairs: Counter = Counter()
    where: dict[tuple[bytes, bytes], set[int]] = defaultdict(set)
    for i, w in enumerate(words):
        for a, b in zip(w, w[1:]):
            pairs[(a, b)] += freq[i]
            where[(a, b)].add(i)
    heap = [(-n, p) for p, n in pairs.items()]
    heapq.heapify(heap)
    ranks: dict[tuple[bytes, bytes], int] = {}
    n_merges = vocab - 256 - 3
    while len(ranks) < n_merges and heap:
        n, p = heapq.heappop(heap)
        if -n != pairs.get(p, 0):
            continue  # stale entry
        if -n < 2:
            break
        ranks[p] = len(ranks)
        new = p[0] + p[1]
        touched: set[tuple[bytes, bytes]] = set()
        for i in list(where[p]):
            w, f = words[i], freq[i]
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] -= f
                touched.add((a, b))
            out, j = [], 0
            while j < len(w):
                if j + 1 < len(w) and w[j] == p[0] and w[j + 1] == p[1]:
                    out.append(new)
                    j += 2
                else:
                    out.append(w[j])
                    j += 1
            words[i] = out
            for a, b in zip(out, out[1:]):
                pairs[(a, b)] += f
                where[(a, b)].add(i)
                touched.add((a, b))
        del where[p]
        pairs.pop(p, None)
        for q in touched:
            if pairs.get(q, 0) > 0:
                heapq.heappush(heap, (-pairs[q], q))
    return ranks


def encode_len(word: str, ranks: dict) -> int:
    w = [bytes([b]) for b in word.encode("utf-8")]
    while len(w) > 1:
        best, bi = None, -1
        for j in range(len(w) - 1):
            r = ranks.get((w[j], w[j + 1]))
            if r is not None and (best is None or r < best):
                best, bi = r, j
        if best is None:
            break
        w = w[:bi] + [w[bi] + w[bi + 1]] + w[bi + 2:]
    return len(w)


def opt(argv: list[str], name: str) -> tuple[str | None, list[str]]:
    if name not in argv:
        return None, argv
    k = argv.index(name)
    return argv[k + 1], argv[:k] + argv[k + 2:]


def main(argv: list[str]):
    out, argv = opt(argv, "--out")
    save, argv = opt(argv, "--save-merges")
    load, argv = opt(argv, "--merges")
    d, vocabs = Path(argv[0]), [int(v) for v in argv[1:]]
    per_file = {}
    for split in ("train", "heldout"):
        for p in sorted((d / split).glob("*.txt")):
            per_file[(split, p.stem)] = (word_counts([p]), len(p.read_text(encoding="utf-8")))
    total: Counter = Counter()
    for (split, _), (c, _) in per_file.items():
        if split == "train":
            total.update(c)
    print(f"word types {len(total):,}, words {sum(total.values()):,}", flush=True)
    result = {}
    # BPE is greedy: the merges of a smaller vocabulary are the first merges of a larger one
    if load:
        merges = json.loads(Path(load).read_text())
        all_ranks = {(a.encode("latin-1"), b.encode("latin-1")): r for r, (a, b) in enumerate(merges)}
    else:
        all_ranks = train(total, max(vocabs))
    if save:
        order = sorted(all_ranks, key=all_ranks.get)
        Path(save).write_text(json.dumps([[a.decode("latin-1"), b.decode("latin-1")] for a, b in order]))
    for v in sorted(vocabs):
        ranks = {p: r for p, r in all_ranks.items() if r < v - 256 - 3}
        cache: dict[str, int] = {}
        rows = []
        for (split, name), (c, chars) in per_file.items():
            n = 0
            for w, f in c.items():
                if w not in cache:
                    cache[w] = encode_len(w, ranks)
                n += cache[w] * f
            rows.append({"split": split, "source": name, "chars": chars, "tokens": n})
        tr = sum(r["tokens"] for r in rows if r["split"] == "train")
        ho = sum(r["tokens"] for r in rows if r["split"] == "heldout")
        ch = sum(r["chars"] for r in rows if r["split"] == "train")
        print(f"vocab {v}: merges {len(ranks)}, train tokens {tr:,} ({ch / tr:.2f} chars/token), "
              f"heldout tokens {ho:,}", flush=True)
        result[v] = {"merges": len(ranks), "train_tokens": tr, "heldout_tokens": ho, "rows": rows}
    if out:
        Path(out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
