"""Turns the raw dumps written by fetch_text.sh into plain paragraphs (one per line).

KJV: one paragraph per chapter ("Genesis 1" header, verse numbers removed).
Devil's Dictionary / Jargon File: dictd headers dropped, wrapped lines joined,
{cross-references} unbraced. Typographic quotes are folded to ASCII.
"""
import re
import sys
from pathlib import Path

FOLD = {"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'", "\u2014": "--",
        "\u2013": "-", "\u2026": "...", "\u00b7": "", "\u2122": "(TM)", "\u00a0": " "}


def fold(s: str) -> str:
    for a, b in FOLD.items():
        s = s.replace(a, b)
    return re.sub(r"[ \t]+", " ", s).strip()


def paragraphs(text: str):
    for block in re.split(r"\n\s*\n", text):
        lines = [l.strip() for l in block.splitlines() if l.strip()]
        if lines:
            yield lines


def clean_kjv(raw: str):
    out, cur, head = [], [], None
    for line in raw.splitlines():
        if not line.strip():
            continue
        m = re.match(r"^([1-3]?\s?[A-Z][A-Za-z ]+ \d+)$", line.strip())
        if m and not line.startswith(" "):
            if cur:
                out.append(head + ". " + " ".join(cur))
            head, cur = m.group(1), []
            continue
        cur.append(re.sub(r"^\s*\d+\s+", "", line).strip())
    if cur:
        out.append(head + ". " + " ".join(cur))
    return [fold(p) for p in out]


def clean_dict(raw: str):
    # skip the dictd 00-database-* preamble up to the first real entry
    out = []
    for lines in paragraphs(raw):
        if lines[0].startswith("00-database") or lines[0].startswith("http"):
            continue
        p = " ".join(lines)
        p = re.sub(r"\{([^}]*)\}", r"\1", p)
        p = fold(p)
        if len(p) >= 2:
            out.append(p)
    return out


def main(corpus: str):
    d = Path(corpus)
    for name, fn in (("kjv", clean_kjv), ("devil", clean_dict), ("jargon", clean_dict)):
        raw = (d / f"{name}.raw").read_text(encoding="utf-8", errors="replace")
        paras = fn(raw)
        (d / f"{name}.txt").write_text("\n".join(paras) + "\n", encoding="utf-8")
        print(name, len(paras), "paragraphs", sum(map(len, paras)), "chars")


if __name__ == "__main__":
    main(sys.argv[1])
