"""Writes the prompts that `kvrelay calibrate-kv` fits kvrelay-tiny's KV predictor on.

Training-split text only (never the held-out paragraphs or the eval seeds): four prose
documents per source, two multi-key lists and two passkey documents, from fixed seeds.
Usage: python3 infra/train/calibration_prompts.py [corpus_dir] OUT_DIR
"""
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import data  # noqa: E402

CAL_SEED = 5150


def main() -> None:
    corpus_dir = sys.argv[1] if len(sys.argv) > 2 else ".cache/text/corpus"
    out = Path(sys.argv[-1])
    out.mkdir(parents=True, exist_ok=True)
    c = data.load_corpus(corpus_dir)
    rng = random.Random(CAL_SEED)
    n = 0
    for s in data.SOURCES:
        for _ in range(4):
            (out / f"cal_{n:02d}_{s}.txt").write_text(data.text_doc(rng, {s: c.train[s]}, 5000))
            n += 1
    for _ in range(2):
        p, _c, _m = data.multikey_item(rng, 64)
        (out / f"cal_{n:02d}_multikey.txt").write_text(p)
        n += 1
    for i in range(2):
        p, _c, _m = data.passkey_item(rng, c.train["kjv"], 4000, i == 0, rng.random())
        (out / f"cal_{n:02d}_passkey.txt").write_text(p)
        n += 1
    print(f"wrote {n} calibration prompts to {out}")


if __name__ == "__main__":
    main()
