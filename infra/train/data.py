"""Training text and generated tasks for kvrelay-tiny.

Everything here produces *strings*; tokenization and packing live in train.py.
All generators take an explicit random.Random so that every stream is reproducible
from a seed. The exact prompt formats are documented in infra/model/kvrelay-tiny/TRAINING.md
and must stay in sync with the TypeScript eval harness.

Formats (the tokenizer adds <bos>; training documents end with <eos>):

  passkey   prompt = PASSKEY_HEADER + "\\n" + filler_a + " The pass key is 71432. Remember it.
                     71432 is the pass key. " + filler_b + "\\nQuestion: What is the pass key?\\nAnswer:"
            completion = " 71432"  then <eos>
  multikey  prompt = MULTIKEY_HEADER + "\\n" + "key: value\\n" * n +
                     "Question: What is the value of KEY?\\nAnswer:"
            completion = " 48213"  then <eos>
  arith     prompt = "Question: " + problem + "\\nSolution:"
            completion = " 12 + 7 = 19. 19 - 5 = 14.\\nAnswer: 14"  then <eos>
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

PASSKEY_HEADER = "There is a pass key hidden inside a lot of irrelevant text. Find it and remember it."
PASSKEY_QUESTION = "\nQuestion: What is the pass key?\nAnswer:"
CLASSIC_FILLER = ("The grass is green. The sky is blue. The sun is yellow. "
                  "Here we go. There and back again.")
MULTIKEY_HEADER = "Below is a list of keys and their values. Remember them."

# ---------------------------------------------------------------- text corpus

SOURCES = ("kjv", "devil", "jargon")  # the small corpus of fetch_text.sh (kvrelay-tiny)
HELDOUT_EVERY = 50  # small corpus: paragraph i of each source is held out when i % 50 == 0


@dataclass
class Corpus:
    train: dict[str, list[str]]
    heldout: dict[str, list[str]]


def load_corpus(corpus_dir: str | Path) -> Corpus:
    """Paragraphs per source. Two layouts: the small corpus (<source>.txt, one paragraph a line,
    held out by paragraph index) and the large one of fetch_corpus.sh (train/<source>.txt and
    heldout/<source>.txt, documents separated by an empty line, held out by document hash in
    clean_corpus.py). Consecutive paragraphs of a source stay in order either way."""
    d = Path(corpus_dir)
    train, held = {}, {}
    if (d / "train").is_dir():
        for f in sorted((d / "train").glob("*.txt")):
            train[f.stem] = [p for p in f.read_text(encoding="utf-8").split("\n") if p.strip()]
            h = d / "heldout" / f.name
            held[f.stem] = [p for p in h.read_text(encoding="utf-8").split("\n") if p.strip()] \
                if h.exists() else []
        if not train:
            raise FileNotFoundError(f"no train/*.txt in {d}")
        held = {k: v for k, v in held.items() if v}
        return Corpus(train, held)
    for s in SOURCES:
        paras = [p for p in (d / f"{s}.txt").read_text(encoding="utf-8").split("\n") if p.strip()]
        train[s] = [p for i, p in enumerate(paras) if i % HELDOUT_EVERY != 0]
        held[s] = [p for i, p in enumerate(paras) if i % HELDOUT_EVERY == 0]
    return Corpus(train, held)


_SRC_CHARS: dict[int, list[int]] = {}


def text_doc(rng: random.Random, paras_by_src: dict[str, list[str]], max_chars: int) -> str:
    """Consecutive paragraphs from one source (chosen by size), about max_chars long."""
    srcs = list(paras_by_src)
    key = id(paras_by_src)
    if key not in _SRC_CHARS:  # summing ~800k paragraph lengths per document would dominate the loader
        _SRC_CHARS[key] = [sum(len(p) for p in paras_by_src[s]) for s in srcs]
    weights = _SRC_CHARS[key]
    s = rng.choices(srcs, weights)[0]
    paras = paras_by_src[s]
    i = rng.randrange(len(paras))
    out, n = [], 0
    while n < max_chars and i < len(paras):
        p = paras[i]
        if n + len(p) > max_chars and out:
            break
        if len(p) > max_chars:  # very long paragraph (KJV chapters): take a sentence-aligned slice
            start = rng.randrange(max(1, len(p) - max_chars))
            dot = p.find(". ", start)
            start = dot + 2 if 0 <= dot < start + 400 else 0
            p = p[start:start + max_chars]
            cut = p.rfind(". ")
            if cut > max_chars // 2:
                p = p[:cut + 1]
        out.append(p)
        n += len(p) + 1
        i += 1
    return "\n".join(out)


def filler_text(rng: random.Random, paras: list[str], n_chars: int, classic: bool) -> str:
    """Filler of about n_chars characters: the classic repeated sentences or book prose."""
    if classic:
        reps = max(1, round(n_chars / (len(CLASSIC_FILLER) + 1)))
        return " ".join([CLASSIC_FILLER] * reps)
    out, n = [], 0
    while n < n_chars:
        p = paras[rng.randrange(len(paras))]
        out.append(p)
        n += len(p) + 1
    s = " ".join(out)[:n_chars + 1]
    cut = s.rfind(". ")
    if cut >= n_chars - 120:
        return s[:cut + 1]
    return s[:s.rfind(" ")].rstrip(",;:") + "."  # long sentence: cut at a word boundary


# ---------------------------------------------------------------- passkey

def passkey_item(rng: random.Random, paras: list[str], n_chars: int, classic: bool,
                 depth: float | None = None) -> tuple[str, str, dict]:
    """Returns (prompt, completion, meta). n_chars ~ filler size; depth in [0,1]."""
    key = rng.randint(10000, 99999)
    depth = rng.random() if depth is None else depth
    filler = filler_text(rng, paras, n_chars, classic)
    # split the filler at a sentence boundary near the requested depth
    pos = int(len(filler) * depth)
    cut = filler.rfind(". ", 0, pos)
    cut = 0 if cut < 0 or pos == 0 else cut + 1
    a, b = filler[:cut].strip(), filler[cut:].strip()
    needle = f"The pass key is {key}. Remember it. {key} is the pass key."
    body = " ".join(x for x in (a, needle, b) if x)
    prompt = PASSKEY_HEADER + "\n" + body + PASSKEY_QUESTION
    return prompt, f" {key}", {"key": key, "depth": depth, "classic": classic}


# ---------------------------------------------------------------- multi-key

ADJ = ("red blue green black white silver golden quiet loud swift slow brave calm dark bright "
       "cold warm old young tall short happy sad wild gentle proud lucky noble hidden ancient "
       "frozen burning hollow little giant crimson amber ivory copper iron stone velvet paper "
       "lonely sleepy hungry clever").split()
NOUN = ("tiger apple river mountain falcon candle garden window harbor lantern castle forest "
        "meadow anchor arrow basket bridge cactus canyon cloud comet desert dragon engine "
        "feather glacier hammer island jungle kettle ladder marble mirror needle ocean orchard "
        "pebble piano planet rabbit saddle shadow spider statue thunder tower valley violin "
        "wagon whale wizard otter").split()


def multikey_item(rng: random.Random, n_pairs: int) -> tuple[str, str, dict]:
    keys = set()
    while len(keys) < n_pairs:
        keys.add(f"{rng.choice(ADJ)}-{rng.choice(NOUN)}")
    # sorted first: a set of strings iterates in the order of the process's hash seed
    # (PYTHONHASHSEED), so list(keys) made each process draw a different held-out set
    keys = sorted(keys)
    rng.shuffle(keys)
    vals = [rng.randint(10000, 99999) for _ in keys]
    qi = rng.randrange(n_pairs)
    lines = "".join(f"{k}: {v}\n" for k, v in zip(keys, vals))
    prompt = (MULTIKEY_HEADER + "\n" + lines +
              f"Question: What is the value of {keys[qi]}?\nAnswer:")
    return prompt, f" {vals[qi]}", {"n_pairs": n_pairs, "index": qi}


# ---------------------------------------------------------------- arithmetic

NAMES = ("Tom Mia Sam Ava Leo Zoe Ben Ivy Max Eva Jack Lily Noah Emma Omar Nina Paul Rosa "
         "Hugo Ella Finn Luna Adam Sara").split()
FEMALE = set("Mia Ava Zoe Ivy Eva Lily Emma Nina Rosa Ella Luna Sara".split())
ITEMS = ("apples marbles stickers coins books pencils cookies stamps shells cards "
         "eggs flowers candles buttons toys beads rocks cupcakes").split()


def arith_item(rng: random.Random, n_ops: int | None = None, max_val: int = 999
               ) -> tuple[str, str, dict]:
    """A word problem with 2-4 operations. Completion holds the worked steps and the answer."""
    n_ops = rng.randint(2, 4) if n_ops is None else n_ops
    name = rng.choice(NAMES)
    other = rng.choice([n for n in NAMES if n != name])
    he = "She" if name in FEMALE else "He"
    item = rng.choice(ITEMS)
    cur = rng.randint(2, 99)
    sents = [f"{name} has {cur} {item}."]
    steps = []
    for i in range(n_ops):
        then = "Then " + he.lower() if i > 0 and rng.random() < 0.5 else he
        ops = ["add"]
        if cur >= 2:
            ops.append("sub")
        if cur * 2 <= max_val:
            ops.append("mul")
        divs = [k for k in (2, 3, 4, 5) if cur % k == 0 and cur >= k]
        if divs:
            ops.append("div")
        op = rng.choice(ops)
        if op == "add":
            b = rng.randint(1, min(99, max_val - cur)) if cur < max_val else 0
            if b == 0:
                op = "sub"
            else:
                verb = rng.choice([f"{then} buys {b} more {item}.", f"{then} finds {b} more {item}.",
                                   f"{then} gets {b} {item} from {other}."])
                steps.append(f"{cur} + {b} = {cur + b}.")
                cur += b
        if op == "sub":
            b = rng.randint(1, min(99, cur - 1)) if cur > 1 else 1
            verb = rng.choice([f"{then} gives {b} {item} to {other}.", f"{then} loses {b} {item}.",
                               f"{then} sells {b} {item}."])
            steps.append(f"{cur} - {b} = {cur - b}.")
            cur -= b
        elif op == "mul":
            ks = [k for k in (2, 3, 4, 5) if cur * k <= max_val]
            k = rng.choice(ks)
            word = {2: "doubles", 3: "triples"}.get(k)
            if word and rng.random() < 0.5:
                verb = f"{then} {word} the number of {item}."
            else:
                verb = f"{then} ends up with {k} times as many {item}."
            steps.append(f"{cur} * {k} = {cur * k}.")
            cur *= k
        elif op == "div":
            k = rng.choice(divs)
            verb = f"{then} splits the {item} into {k} equal piles and keeps one pile."
            steps.append(f"{cur} / {k} = {cur // k}.")
            cur //= k
        sents.append(verb)
    sents.append(f"How many {item} does {name} have now?")
    prompt = "Question: " + " ".join(sents) + "\nSolution:"
    completion = " " + " ".join(steps) + f"\nAnswer: {cur}"
    return prompt, completion, {"answer": cur, "n_ops": n_ops}


def drill_doc(rng: random.Random, n_lines: int) -> str:
    """Bare equations of the kinds the word problems need (dense arithmetic practice)."""
    lines = []
    for _ in range(n_lines):
        op = rng.choice("+-*/")
        if op == "+":
            a = rng.randint(0, 999); b = rng.randint(0, min(99, 999 - a)) if a < 999 else 0
            c = a + b
        elif op == "-":
            a = rng.randint(1, 999); b = rng.randint(0, min(a, 99)); c = a - b
        elif op == "*":
            b = rng.randint(2, 5); a = rng.randint(0, 999 // b); c = a * b
        else:
            b = rng.randint(2, 5); c = rng.randint(0, 999 // b); a = c * b
        lines.append(f"{a} {op} {b} = {c}")
    return "\n".join(lines)


# ---------------------------------------------------------------- training stream

# Target share of training *tokens* per document kind (run 3).
MIX = {"text": 0.08, "passkey": 0.25, "multikey": 0.30, "arith": 0.20, "drill": 0.05, "copy": 0.12}
# The second model (large corpus, 4k context): mostly text, for a held-out perplexity that means
# something, with enough retrieval and arithmetic to keep the tasks (see infra/train/CORPUS.md).
MIX_TEXT = {"text": 0.55, "passkey": 0.12, "multikey": 0.14, "arith": 0.09, "drill": 0.03, "copy": 0.07}
MIXES = {"run3": MIX, "text": MIX_TEXT}
ANSWER_WEIGHT = 2.0  # loss weight of retrieval answer tokens (passkey, multi-key) in training
PROSE_FILLER = 0.3   # share of training passkey items with book-prose filler (rest: classic)
CURRICULUM_END = 0.5  # training fraction at which retrieval items reach their full size


def curriculum(progress: float, max_tokens: int = 2040) -> dict:
    """Size limits of retrieval items at a training fraction: short and few-pair items first
    (run 2 never learned look-up when every item was long from the start). The final sizes
    scale with the context (max_tokens 2040 = kvrelay-tiny's 2048-token rows)."""
    f = min(1.0, max(0.0, progress) / CURRICULUM_END)
    scale = max(1.0, max_tokens / 2040)
    return {"max_pairs": int(8 + (150 * scale - 8) * f),
            "max_passkey_tokens": int(200 + (max_tokens - 200) * f),
            "max_copy_items": int(24 + (160 * scale - 24) * f)}


def _numbers(line_value: str) -> list[tuple[str, float]]:
    """' 48213' as its own zero-weight segment: random digits carry no learnable signal."""
    return [(line_value, 0.0)]


def copy_parts(rng: random.Random, n_items: int) -> list[tuple[str, float]]:
    """A dense induction drill: a random list of words and numbers, then the same list again.
    The first copy is unpredictable (weight 0); every token of the second is predictable only
    by looking back."""
    words = [rng.choice((rng.choice(ADJ), rng.choice(NOUN), rng.choice(NAMES), rng.choice(ITEMS),
                         str(rng.randint(0, 99999)))) for _ in range(n_items)]
    seq = " " + " ".join(words)
    return [("Copy this list:", 1.0), (seq, 0.0), ("\nAgain:", 1.0), (seq, 1.0)]


def sample_parts(kind: str, rng: random.Random, corpus: Corpus, cpt: dict | None = None,
                 max_tokens: int = 2040, progress: float = 1.0) -> list[tuple[str, float]]:
    """One training document as (text, loss weight) segments; segment boundaries sit where
    pre-tokenization splits anyway, so tokenizing them separately equals tokenizing the whole.
    Multi-key training documents ask several questions (eval prompts ask one: the first
    question/answer of a training document has exactly the eval format). Random numbers that
    nothing predicts (the listed values, the first mention of the pass key) weigh 0."""
    cur = curriculum(progress, max_tokens)
    if kind == "passkey":
        cpt = cpt or {"classic": 4.0, "prose": 3.2}
        classic = rng.random() >= PROSE_FILLER
        n_tok = rng.randint(100, max(110, min(max_tokens, cur["max_passkey_tokens"]) - 70))
        p, c, meta = passkey_item(rng, _flat(corpus), int(n_tok * cpt["classic" if classic else "prose"]),
                                  classic)
        key = str(meta["key"])
        head, tail = p.split(f"The pass key is {key}.", 1)
        return [(head + "The pass key is", 1.0), (f" {key}", 0.0), ("." + tail, 1.0), (c, ANSWER_WEIGHT)]
    if kind == "multikey":
        n = rng.randint(2, max(2, cur["max_pairs"]))
        p, c, meta = multikey_item(rng, n)
        lines = p.split("\n")
        parts: list[tuple[str, float]] = [(lines[0] + "\n", 1.0)]
        for line in lines[1:-2]:
            k, v = line.split(": ")
            parts += [(k + ":", 1.0), *_numbers(" " + v), ("\n", 1.0)]
        parts += [(lines[-2] + "\n" + lines[-1], 1.0), (c, ANSWER_WEIGHT)]
        pairs = dict(line.split(": ") for line in lines[1:-2])
        asked = {p.rsplit("value of ", 1)[1].split("?")[0]}
        for _ in range(rng.randint(0, min(31, n - 1))):
            k = rng.choice([k for k in pairs if k not in asked])
            asked.add(k)
            parts += [(f"\nQuestion: What is the value of {k}?\nAnswer:", 1.0),
                      (f" {pairs[k]}", ANSWER_WEIGHT)]
        return parts
    if kind == "copy":
        return copy_parts(rng, rng.randint(8, max(8, cur["max_copy_items"])))
    return [(sample_doc(kind, rng, corpus, cpt, max_tokens), 1.0)]


def sample_doc(kind: str, rng: random.Random, corpus: Corpus, cpt: dict | None = None,
               max_tokens: int = 2040) -> str:
    """One training document (without <bos>/<eos>) of the given kind."""
    if kind == "text":
        # ~3.5 chars a token: long contexts get long text documents
        return text_doc(rng, corpus.train, rng.randint(300, 6000 if max_tokens <= 2040 else 3 * max_tokens))
    if kind == "passkey":
        # cpt: measured characters per token of each filler kind (train.py calibrates it)
        cpt = cpt or {"classic": 4.0, "prose": 3.2}
        classic = rng.random() < 0.5
        n_tok = rng.randint(160, max_tokens - 70)
        p, c, _ = passkey_item(rng, _flat(corpus), int(n_tok * cpt["classic" if classic else "prose"]),
                               classic)
        return p + c
    if kind == "multikey":
        p, c, _ = multikey_item(rng, rng.randint(4, 150))
        return p + c
    if kind == "arith":
        p, c, _ = arith_item(rng)
        return p + c
    if kind == "drill":
        return drill_doc(rng, rng.randint(10, 60))
    if kind == "copy":
        return "".join(t for t, _ in copy_parts(rng, rng.randint(8, 160)))
    raise ValueError(kind)


_FLAT: dict[int, list[str]] = {}


def _flat(corpus: Corpus) -> list[str]:
    k = id(corpus)
    if k not in _FLAT:
        _FLAT[k] = [p for s in corpus.train for p in corpus.train[s] if len(p) > 40]
    return _FLAT[k]


# ---------------------------------------------------------------- held-out eval sets

EVAL_SEEDS = {"passkey": 9001, "multikey": 9002, "arith": 9003, "text": 9004}
PASSKEY_LENGTHS = (256, 512, 1024, 1536, 2048)  # total item tokens incl. <bos>, answer, <eos>
PASSKEY_LENGTHS_4K = (256, 512, 1024, 2048, 3072, 4096)  # the second model (4k context)


def eval_multikey(n: int = 200, n_pairs: int = 64):
    rng = random.Random(EVAL_SEEDS["multikey"])
    return [multikey_item(rng, n_pairs) for _ in range(n)]


def eval_arith(n: int = 300):
    rng = random.Random(EVAL_SEEDS["arith"])
    return [arith_item(rng, n_ops=2 + i % 3) for i in range(n)]


def eval_text(corpus: Corpus, n: int = 64):
    rng = random.Random(EVAL_SEEDS["text"])
    return [text_doc(rng, corpus.heldout, 4000) for _ in range(n)]


if __name__ == "__main__":
    import sys
    c = load_corpus(sys.argv[1] if len(sys.argv) > 1 else ".cache/text/corpus")
    r = random.Random(0)
    for k in MIX:
        d = sample_doc(k, r, c)
        print(f"=== {k} ({len(d)} chars)\n{d[:600]}\n...\n{d[-200:]}\n")
