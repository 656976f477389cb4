"""Held-out task accuracy of an exported kvrelay-tiny folder, measured through transformers'
LlamaForCausalLM (fp16, greedy decoding, KV cache) and the `tokenizers` tokenizer.json.

Each item: prompt ids = tokenizer.encode(prompt) (the post-processor prepends <bos>); greedy
generation until <eos> or max_new_tokens; the integer after the last "Answer:" (for retrieval
prompts, which already end in "Answer:", the first integer of the completion) must equal the
expected one. Prints accuracy with a 95% Wilson interval per task/bucket and held-out text
perplexity; writes JSON.

usage: python3 infra/train/eval.py --model DIR --corpus .cache/text/corpus --out eval.json [--scale 0.1]
"""
from __future__ import annotations

import argparse
import json
import math
import random
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import data  # noqa: E402


def wilson(k: int, n: int, z: float = 1.96):
    if n == 0:
        return (0.0, 0.0)
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (max(0.0, c - h), min(1.0, c + h))


def parse_answer(prompt: str, completion: str):
    text = completion
    if not prompt.endswith("Answer:"):
        if "Answer:" not in completion:
            return None
        text = completion.rsplit("Answer:", 1)[1]
    m = re.match(r"\s*(-?\d+)", text)
    return int(m.group(1)) if m else None


def passkey_set(tok, corpus, classic: bool, n_per_len: int, lengths=data.PASSKEY_LENGTHS):
    """Items whose total length (<bos> + prompt + answer + <eos>) is within 48 tokens below L."""
    flat = data._flat(corpus)  # filler comes from training paragraphs, as in training
    base = data.EVAL_SEEDS["passkey"] + (0 if classic else 1)
    items = []
    for L in lengths:
        for i in range(n_per_len):
            depth = (i + 0.5) / n_per_len
            seed = base * 100000 + L * 100 + i

            def make(n_chars):
                p, c, meta = data.passkey_item(random.Random(seed), flat, n_chars, classic, depth)
                return p, c, meta, len(tok.encode(p + c).ids) + 1

            # the filler is a prefix-growing function of n_chars: binary-search the longest
            # item whose total token count is <= L
            lo, hi = 0, L * 8
            while hi - lo > 8:
                mid = (lo + hi) // 2
                if make(mid)[3] <= L:
                    lo = mid
                else:
                    hi = mid
            p, c, meta, total = make(lo)
            meta.update(length=L, tokens=total)
            items.append((p, c, meta))
    return items


@torch.no_grad()
def generate(model, tok, prompts, max_new: int, bs: int, device):
    """Greedy generation; prompts are grouped by token length so no padding is needed."""
    enc = [tok.encode(p).ids for p in prompts]
    out = [None] * len(prompts)
    groups = defaultdict(list)
    for i, e in enumerate(enc):
        groups[len(e)].append(i)
    for _, idxs in sorted(groups.items()):
        for s in range(0, len(idxs), bs):
            chunk = idxs[s:s + bs]
            x = torch.tensor([enc[i] for i in chunk], device=device)
            y = model.generate(input_ids=x, attention_mask=torch.ones_like(x), max_new_tokens=max_new,
                               do_sample=False, eos_token_id=1, pad_token_id=2)
            for j, i in enumerate(chunk):
                new = y[j, x.shape[1]:].tolist()
                if 1 in new:
                    new = new[:new.index(1)]
                out[i] = tok.decode(new, skip_special_tokens=True)
    return out


def score(name, items, completions, bucket_key=None):
    res = defaultdict(lambda: [0, 0])
    rows = []
    for (p, c, meta), got in zip(items, completions):
        exp = parse_answer(p, c)
        ans = parse_answer(p, got)
        ok = ans is not None and ans == exp
        b = f"{name}@{meta[bucket_key]}" if bucket_key else name
        for k in {name, b}:
            res[k][0] += ok
            res[k][1] += 1
        rows.append({"ok": ok, "expected": exp, "got": got[:120], **meta})
    return res, rows


@torch.no_grad()
def text_ppl(model, tok, corpus, device, n=64, T=2048):
    tot, cnt = 0.0, 0
    for d in data.eval_text(corpus, n):
        ids = tok.encode(d).ids[:T]
        x = torch.tensor([ids], device=device)
        logits = model(x).logits.float()
        loss = torch.nn.functional.cross_entropy(logits[0, :-1], x[0, 1:], reduction="sum")
        tot += loss.item()
        cnt += len(ids) - 1
    return math.exp(tot / cnt), tot / cnt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--corpus", default=".cache/text/corpus")
    ap.add_argument("--out", default=None)
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of each eval set (smoke tests)")
    ap.add_argument("--context", type=int, default=2048, help="4096: passkey up to 4k tokens, 4k text windows")
    args = ap.parse_args()
    from tokenizers import Tokenizer
    from transformers import LlamaForCausalLM

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    tok = Tokenizer.from_file(str(Path(args.model) / "tokenizer.json"))
    model = LlamaForCausalLM.from_pretrained(args.model, dtype=dtype).to(device).eval()
    corpus = data.load_corpus(args.corpus)
    n = lambda k: max(2, int(k * args.scale))  # noqa: E731
    t0 = time.time()
    lengths = data.PASSKEY_LENGTHS_4K if args.context >= 4096 else data.PASSKEY_LENGTHS

    sets = {
        "passkey": (passkey_set(tok, corpus, True, n(50), lengths), 8, 1, "length"),
        "passkey_prose": (passkey_set(tok, corpus, False, n(20), lengths), 8, 1, "length"),
        "multikey": (data.eval_multikey(n(200), 64), 8, 64, None),
        "multikey_128": (data.eval_multikey(n(100), 128), 8, 64, None),
        "arith": (data.eval_arith(n(300)), 80, 128, "n_ops"),
    }
    results, details = {}, {}
    mismatch = 0
    for name, (items, max_new, bs, bucket) in sets.items():
        for p, c, _ in items:  # prompt tokens must be a prefix of prompt+completion tokens
            a, b = tok.encode(p).ids, tok.encode(p + c).ids
            mismatch += b[:len(a)] != a
        comps = generate(model, tok, [p for p, _, _ in items], max_new, bs, device)
        res, rows = score(name, items, comps, bucket)
        for k, (ok, tot) in res.items():
            lo, hi = wilson(ok, tot)
            results[k] = {"correct": ok, "n": tot, "acc": ok / tot, "ci95": [lo, hi]}
        details[name] = rows[:20]
    ppl, nll = text_ppl(model, tok, corpus, device, T=args.context)
    results["text"] = {"ppl": ppl, "nll_per_token": nll}
    print(f"prompt/completion token-boundary mismatches: {mismatch}")
    print(f"{'task':<22}{'acc':>8}{'n':>6}   95% CI")
    for k in sorted(k for k in results if k != "text"):
        r = results[k]
        print(f"{k:<22}{r['acc']:>8.3f}{r['n']:>6}   [{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}]")
    print(f"held-out text ppl {ppl:.2f} (nll {nll:.4f}/token); eval took {time.time() - t0:.0f}s")
    for name in sets:
        bad = [r for r in details[name] if not r["ok"]][:2]
        for r in bad:
            print(f"  miss {name}: expected {r['expected']} got {r['got']!r}")
    if args.out:
        Path(args.out).write_text(json.dumps({"results": results, "examples": details,
                                              "boundary_mismatches": mismatch}, indent=2))


if __name__ == "__main__":
    main()
