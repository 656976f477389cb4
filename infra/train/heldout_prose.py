"""Writes held-out prose prompts (one document per source, about 900-1300 kvrelay-tiny tokens) for
the codec benchmarks: paragraphs the model never trained on (data.py's held-out split).
Usage: python3 infra/train/heldout_prose.py [corpus_dir] OUT_DIR  -> OUT_DIR/held_{kjv,devil,jargon}.txt
"""
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import data  # noqa: E402


def main() -> None:
    corpus_dir = sys.argv[1] if len(sys.argv) > 2 else ".cache/text/corpus"
    out = Path(sys.argv[-1])
    out.mkdir(parents=True, exist_ok=True)
    c = data.load_corpus(corpus_dir)
    for s in data.SOURCES:
        doc = data.text_doc(random.Random(1234), {s: c.heldout[s]}, 6500)
        (out / f"held_{s}.txt").write_text(doc)
    print(f"wrote held-out prose for {', '.join(data.SOURCES)} to {out}")


if __name__ == "__main__":
    main()
