"""Trains tokenizer.py's byte-level BPE tokenizer without the `tokenizers` package (standard library
only), and writes the tokenizer.json that `tokenizers` would write, with the same
tokenizer_config.json and special_tokens_map.json.

usage: python3 bpe_train.py CORPUS_DIR OUT/tokenizer.json [VOCAB] [MODEL_MAX_LENGTH]

Same texts as tokenizer.py (its training_texts(): the training paragraphs and the generated task
documents of seed 1234), the same pre-tokenization (every numeric character alone, as Digits with
individual_digits does, then the GPT-2 regex of ByteLevel with its Unicode classes spelled out),
and bpe_estimate.learn(), which follows the BpeTrainer's rules: specials <bos>=0 <eos>=1 <pad>=2,
the 256 byte characters sorted by code point, then merges (most frequent pair, ties to smaller
ids, pair frequency >= 2) until VOCAB tokens. The output does not depend on PYTHONHASHSEED.

The 8,192-token tokenizer of CORPUS.md's corpus (201 M characters) takes about a minute on one core
and 1 GiB of memory.
"""
from __future__ import annotations

import json
import re
import sys
import time
import unicodedata
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import bpe_estimate  # noqa: E402
import tokenizer  # noqa: E402

# White_Space, what \s means to the Oniguruma regex `tokenizers` runs (Python's \s adds U+001C-1F)
SPACE = "\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"


def _category_class(prefix: str) -> str:
    """The code points whose general category starts with `prefix`, as regex class ranges."""
    out, start = [], None
    for cp in range(0x110001):
        inside = cp < 0x110000 and unicodedata.category(chr(cp)).startswith(prefix)
        if inside and start is None:
            start = cp
        elif not inside and start is not None:
            out.append(f"\\U{start:08x}" if start == cp - 1 else f"\\U{start:08x}-\\U{cp - 1:08x}")
            start = None
    return "".join(out)


def pretokenizer() -> re.Pattern:
    """Digits(individual_digits) then ByteLevel's `'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+|
    ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+` in each piece, as one regex: a numeric character is always
    a piece of its own (so never after a space), and a piece also ends before one (the lookahead)."""
    letter, number = _category_class("L"), _category_class("N")
    return re.compile(f"'s|'t|'re|'ve|'m|'ll|'d| ?[{letter}]+|[{number}]| ?[^{SPACE}{letter}{number}]+"
                      f"|[{SPACE}]+(?![^{SPACE}{number}])|[{SPACE}]+")


def tokenizer_json(merges: list[tuple[bytes, bytes]]) -> dict:
    """tokenizer.json as tokenizer.py's Tokenizer.save() lays it out, for the merges learn() returned."""
    chars = bpe_estimate.byte_chars()

    def text(t: bytes) -> str:
        return "".join(chars[b] for b in t)

    ranks = {p: r for r, p in enumerate(merges)}  # a pair merged twice keeps its later rank
    tokens = [*tokenizer.SPECIALS, *sorted(chars)]
    seen = set(tokens)
    for a, b in merges:
        if text(a + b) not in seen:
            seen.add(text(a + b))
            tokens.append(text(a + b))
    special = [{"id": i, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
                "normalized": False, "special": True} for i, s in enumerate(tokenizer.SPECIALS)]
    bos = {"SpecialToken": {"id": "<bos>", "type_id": 0}}
    seq_a, seq_b = ({"Sequence": {"id": s, "type_id": 0}} for s in "AB")
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": special,
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": True},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [bos, seq_a],
            "pair": [bos, seq_a, bos, seq_b],
            "special_tokens": {"<bos>": {"id": "<bos>", "ids": [0], "tokens": ["<bos>"]}},
        },
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {
            "type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
            "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
            "vocab": {t: i for i, t in enumerate(tokens)},
            "merges": [[text(a), text(b)] for a, b in sorted(ranks, key=ranks.get)],
        },
    }


def main(argv: list[str]):
    corpus_dir, out = argv[0], Path(argv[1])
    vocab = int(argv[2]) if len(argv) > 2 else 4096
    t0 = time.time()
    pretok = pretokenizer()
    counts: Counter = Counter()
    for t in tokenizer.training_texts(corpus_dir):
        counts.update(pretok.findall(t))
    t1 = time.time()
    print(f"word types {len(counts):,}, words {sum(counts.values()):,} ({t1 - t0:.0f} s)", flush=True)
    merges = bpe_estimate.learn(counts, vocab, len(tokenizer.SPECIALS))
    del counts
    doc = tokenizer_json(merges)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2, ensure_ascii=False), encoding="utf-8")
    tokenizer.write_tokenizer_config(str(out.parent), int(argv[3]) if len(argv) > 3 else 2048)
    m = doc["model"]
    print(f"vocab {len(m['vocab'])}, merges {len(m['merges'])} ({time.time() - t1:.0f} s learning)")
    chars = bpe_estimate.byte_chars()
    ranks = {p: r for r, p in enumerate(merges)}
    s = "Question: Tom has 12 apples.\nSolution: 12 + 7 = 19.\nAnswer: 19"
    pieces = [t for w in pretok.findall(s) for t in bpe_estimate.encode_word(w, ranks)]
    print([m["vocab"]["".join(chars[b] for b in t)] for t in pieces])
    print(["".join(chars[b] for b in t) for t in pieces])
    assert b"".join(pieces).decode("utf-8") == s
    print(f"total {time.time() - t0:.0f} s")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1:])
