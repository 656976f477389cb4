"""Estimates how many tokens the corpus has under a byte-level BPE trained on it, without the
`tokenizers` package (not installable here; bpe_train.py trains the real tokenizer with this
file's learn()). Pure Python: word counts, then BPE merges on the word types.

usage: python3 bpe_estimate.py CORPUS_DIR VOCAB [VOCAB ...] [--out FILE] [--save-merges F | --merges F]
  CORPUS_DIR: train/*.txt and heldout/*.txt from clean_corpus.py.
  --save-merges F: also write the learned merges (JSON list of [a, b] as latin-1 strings, in the
  order learned).
  --merges F: learn nothing; count CORPUS_DIR with merges saved before (e.g. for sources added
  after the tokenizer was trained: a slight overestimate against training on everything).

Pre-tokenization imitates tokenizer.py: digits one per token, then a GPT-2-style split
(optional leading space + letters, or + punctuation run, whitespace alone). With 3 special
tokens and 256 byte symbols, learn() learns merges by the rules of the `tokenizers` trainer until
the vocabulary has VOCAB tokens (pair frequency >= 2), and each word type is encoded with those
merges by rank, as Hugging Face BPE does. Counts exclude <bos>/<eos>. The approximate regex and
the documents split at empty lines (tokenizer.py trains on paragraphs) are what differ from the
real tokenizer; CORPUS.md compares the counts.
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


def byte_chars() -> list[str]:
    """GPT-2's bytes_to_unicode: the printable character byte-level BPE writes for each byte."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = {}, 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return [chars[b] for b in range(256)]


def learn(counts: Counter, vocab: int, n_special: int = 3, min_frequency: int = 2
          ) -> list[tuple[bytes, bytes]]:
    """Byte-level BPE merges, in the order learned, as the `tokenizers` BpeTrainer learns them.

    counts: pre-tokenized word -> frequency. The vocabulary starts with n_special tokens and the
    256 bytes, ordered as their byte_chars() characters (the trainer's initial alphabet, sorted by
    code point); each step merges the most frequent adjacent pair, ties going to the pair of
    smaller ids (earlier tokens), until the vocabulary has `vocab` tokens or no pair occurs
    min_frequency times. A merge whose result already is a token adds no token (and the same pair
    may then be merged again: a later rank replaces the earlier one in the model). Each queued pair
    carries the words it was counted in, and a merge rewrites only those, as the trainer does.
    """
    chars = byte_chars()
    order = sorted(range(256), key=lambda b: chars[b])
    tokens = [bytes([b]) for b in order]  # id - n_special -> token
    ids = {t: i for i, t in enumerate(tokens)}
    sym = [0] * 256
    for i, b in enumerate(order):
        sym[b] = i
    words = [[sym[b] for b in w.encode("utf-8")] for w in counts]
    freq = list(counts.values())
    # a pair (a, b) of ids is the int a << 32 | b, which orders as (a, b) does
    pair_counts: defaultdict[int, int] = defaultdict(int)
    where: defaultdict[int, set[int]] = defaultdict(set)
    for i, w in enumerate(words):
        f = freq[i]
        for a, b in zip(w, w[1:]):
            k = a << 32 | b
            pair_counts[k] += f
            where[k].add(i)
    seq = 0  # heap entries: (-count, pair, seq, words)

    def queue_entries(upd: dict[int, set[int]]) -> list:
        nonlocal seq
        out = []
        for k, pos in upd.items():
            if pair_counts[k] > 0:
                out.append((-pair_counts[k], k, seq, pos))
                seq += 1
        return out

    heap = queue_entries(where)
    del where
    heapq.heapify(heap)
    merges: list[tuple[bytes, bytes]] = []
    mask = (1 << 32) - 1
    while n_special + len(tokens) < vocab and heap:
        neg, k, _, pos = heapq.heappop(heap)
        if -neg != pair_counts[k]:
            heapq.heappush(heap, (-pair_counts[k], k, seq, pos))
            seq += 1
            continue
        if -neg < max(1, min_frequency):
            break
        a, b = k >> 32, k & mask
        new = tokens[a] + tokens[b]
        nid = ids.get(new)
        if nid is None:
            nid = len(tokens)
            tokens.append(new)
            ids[new] = nid
        merges.append((tokens[a], tokens[b]))
        upd: defaultdict[int, set[int]] = defaultdict(set)
        for i in pos:
            w = words[i]
            f = freq[i]
            j = 0
            while j < len(w) - 1:  # left to right, as tokenizers' Word::merge, with its changes
                if w[j] == a and w[j + 1] == b:
                    if j > 0:
                        p = w[j - 1]
                        pair_counts[p << 32 | a] -= f
                        q = p << 32 | nid
                        pair_counts[q] += f
                        upd[q].add(i)
                    w[j:j + 2] = [nid]
                    if j < len(w) - 1:
                        n = w[j + 1]
                        pair_counts[b << 32 | n] -= f
                        q = nid << 32 | n
                        pair_counts[q] += f
                        upd[q].add(i)
                j += 1
        for e in queue_entries(upd):
            heapq.heappush(heap, e)
    return merges


def ranks_for(merges: list[tuple[bytes, bytes]], vocab: int, n_special: int = 3
              ) -> dict[tuple[bytes, bytes], int]:
    """Pair -> rank of the merges that a vocabulary of `vocab` tokens keeps: learning stops the
    first time the vocabulary is full, so a smaller vocabulary's merges begin a larger one's."""
    made = {bytes([b]) for b in range(256)}
    ranks: dict[tuple[bytes, bytes], int] = {}
    for r, (a, b) in enumerate(merges):
        if n_special + len(made) >= vocab:
            break
        made.add(a + b)
        ranks[(a, b)] = r
    return ranks


def encode_len(word: str, ranks: dict) -> int:
    return len(encode_word(word, ranks))


def encode_word(word: str, ranks: dict) -> list[bytes]:
    """A pre-tokenized word's tokens: the pair of lowest rank merged first, leftmost on ties."""
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
    return w


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
        merges = [(a.encode("latin-1"), b.encode("latin-1")) for a, b in json.loads(Path(load).read_text())]
    else:
        merges = learn(total, max(vocabs))
    if save:
        Path(save).write_text(json.dumps([[a.decode("latin-1"), b.decode("latin-1")] for a, b in merges]))
    for v in sorted(vocabs):
        ranks = ranks_for(merges, v)
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
