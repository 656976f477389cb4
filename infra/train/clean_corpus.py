"""Turns the Debian packages unpacked by fetch_corpus.sh into plain-text training documents.

usage: python3 clean_corpus.py ROOT OUT
  ROOT: one folder per package (ROOT/<package>/usr/...), as `dpkg -x` left them.
  OUT:  OUT/train/<source>.txt and OUT/heldout/<source>.txt, plus OUT/manifest.json.

Output format: one paragraph per line, documents separated by one empty line.
A document is one natural unit of its source (an HTML page, an rst/pod file, a Bible book,
a run of about 8,000 characters of consecutive dictionary entries).

Cleaning, per format: HTML/Mallard (text of block elements; <pre>, scripts, navigation and
sidebars dropped), reStructuredText (literal blocks, code/toctree/image directives, comments,
tables and heading rules dropped; roles unwrapped), POD (verbatim paragraphs dropped, formatting
codes unwrapped), dictd databases (entries joined into documents), SWORD zText/zCom modules
(OSIS markup stripped), man pages (rendered with groff, examples between .nf/.fi dropped).
Then: paragraphs that are mostly not prose are dropped (fewer than 4 words, or under 60%
letters and spaces), every exact repeat of a paragraph longer than 0 chars is dropped after
its first occurrence (navigation, licence and boilerplate lines), and repeated documents go.

Held-out split: a document is held out when the first two bytes of sha256(its text), read as a
big-endian integer, are below HELDOUT_PER_65536 (about 2%). Deterministic: no random state, and
it does not depend on the order or the set of other documents.
"""
from __future__ import annotations

import gzip
import hashlib
import html
import json
import re
import struct
import subprocess
import sys
import zlib
from html.parser import HTMLParser
from pathlib import Path

HELDOUT_PER_65536 = 1311  # ~2.0%
DICT_DOC_CHARS = 8000
MAX_DOC_CHARS = 16000  # longer documents (Bible books, whole manuals) are cut into ~8,000-char ones

FOLD = {"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'", "\u2014": "--",
        "\u2013": "-", "\u2026": "...", "\u00b7": "", "\u2122": "(TM)", "\u00a0": " ",
        "\u00b6": "", "\u2192": "->", "\u2190": "<-", "\u200b": "", "\ufeff": ""}
FOLD_RE = re.compile("|".join(map(re.escape, FOLD)))


def fold(s: str) -> str:
    s = FOLD_RE.sub(lambda m: FOLD[m.group(0)], s)
    return re.sub(r"\s+", " ", s).strip()


def is_prose(p: str) -> bool:
    if len(p.split()) < 4:
        return False
    good = sum(c.isalpha() or c == " " for c in p)
    return good >= 0.6 * len(p)


# ---------------------------------------------------------------- HTML and Mallard

BLOCK = {"p", "div", "li", "dd", "dt", "h1", "h2", "h3", "h4", "h5", "h6", "td", "th", "tr",
         "br", "blockquote", "section", "title", "table", "ul", "ol", "dl", "caption",
         "figcaption", "article", "item", "note", "terms", "tree", "list", "steps", "desc",
         "synopsis", "hr", "body", "page"}
SKIP = {"script", "style", "pre", "head", "nav", "footer", "header", "screen", "info",
        "svg", "math", "textarea", "select", "button", "form", "code-block", "links"}
SKIP_CLASS = re.compile(r"sphinxsidebar|related|footer|header|navigation|navheader|navfooter|"
                        r"breadcrumb|toctree|\btoc\b|highlight|literal-block|programlisting|"
                        r"screen|synopsis|headerlink|linenos|searchbox|menu|copyright|"
                        r"legalnotice|revhistory|index", re.I)


class TextHTML(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.paras: list[str] = []
        self.cur: list[str] = []
        self.stack: list[tuple[str, bool]] = []  # (tag, skipping)
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("br", "hr", "img", "meta", "link", "input", "col", "area", "base", "wbr"):
            if tag in ("br", "hr"):
                self.flush()
            return
        cls = " ".join(v or "" for k, v in attrs if k in ("class", "id", "role"))
        # Qt's "header" div wraps the whole page: not a header to drop
        skipping = tag in SKIP or bool(cls and SKIP_CLASS.search(cls) and "qtdocheader" not in cls)
        self.stack.append((tag, skipping))
        if skipping:
            self.skip += 1
        if tag in BLOCK:
            self.flush()

    def handle_endtag(self, tag):
        # pop up to the matching tag (HTML in the wild is not always well nested)
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                for _, s in self.stack[i:]:
                    self.skip -= s
                del self.stack[i:]
                break
        if tag in BLOCK:
            self.flush()

    def handle_data(self, data):
        if not self.skip:
            self.cur.append(data)

    def flush(self):
        if self.cur:
            p = fold("".join(self.cur))
            if p:
                self.paras.append(p)
            self.cur = []


def html_paras(text: str) -> list[str]:
    p = TextHTML()
    try:
        p.feed(text)
        p.close()
    except Exception:  # malformed markup: keep what was parsed
        pass
    p.flush()
    return p.paras


# ---------------------------------------------------------------- reStructuredText

RST_KEEP = {"note", "warning", "versionadded", "versionchanged", "seealso", "deprecated", "tip",
            "important", "attention", "caution", "admonition", "topic", "hint", "danger",
            "error", "sidebar", "rubric", "function", "method", "class", "attribute", "data",
            "exception", "describe", "option", "envvar", "module", "decorator", "c:function",
            "c:macro", "c:type", "c:member", "py:function", "py:method", "py:class",
            "py:attribute", "variable", "command", "glossary", "container", "only"}
RST_RULE = re.compile(r"^([=\-~^\"'`#*+_.:])\1{2,}\s*$")
RST_DIRECTIVE = re.compile(r"^\s*\.\.\s+([\w:-]+)::(.*)$")


def rst_inline(s: str) -> str:
    s = re.sub(r":[\w:+-]+:`~?!?([^`<]*?)\s*(<[^>]*>)?`", r"\1", s)
    s = re.sub(r"`([^`<]+?)\s*<[^>]+>`__?", r"\1", s)
    s = re.sub(r"``([^`]+)``", r"\1", s)
    s = re.sub(r"`([^`]+)`_{0,2}", r"\1", s)
    s = re.sub(r"\*\*([^*]+)\*\*", r"\1", s)
    s = re.sub(r"(?<!\w)\*([^*\s][^*]*)\*", r"\1", s)
    s = re.sub(r"\[#?\w*\]_", "", s)
    s = re.sub(r"\|([\w -]+)\|", r"\1", s)
    return s


def rst_paras(text: str) -> list[str]:
    lines = text.splitlines()
    out, cur = [], []
    skip_indent = None  # skipping lines indented deeper than this

    def flush():
        if cur:
            out.append(fold(rst_inline(" ".join(cur))))
            cur.clear()

    def indent(l):
        return len(l) - len(l.lstrip())

    for line in lines:
        if skip_indent is not None:
            if not line.strip() or indent(line) > skip_indent:
                continue
            skip_indent = None
        s = line.strip()
        if not s:
            flush()
            continue
        if RST_RULE.match(s) or s.startswith(("+-", "+=", "|")) or s.startswith((">>>", "$ ", "# ")):
            flush()
            continue
        m = RST_DIRECTIVE.match(line)
        if m:
            flush()
            if m.group(1) not in RST_KEEP:
                skip_indent = indent(line)
            elif m.group(1) in ("note", "warning", "tip", "hint", "important", "seealso",
                                 "deprecated", "versionadded", "versionchanged", "caution",
                                 "attention", "danger", "admonition", "topic"):
                rest = m.group(2).strip()
                if rest:
                    cur.append(rest)
            continue
        if s.startswith(".."):  # comment, target or substitution definition
            flush()
            skip_indent = indent(line)
            continue
        if s.startswith(":") and re.match(r"^:[\w -]+:", s) and len(s) < 80 and not cur:
            continue  # field list metadata (:Author:, :orphan:, :maxdepth: ...)
        if s.endswith("::"):
            cur.append(s[:-2].rstrip() + (":" if s[:-2].strip() else ""))
            flush()
            skip_indent = indent(line)
            continue
        cur.append(s)
    flush()
    return out


# ---------------------------------------------------------------- POD

def pod_inline(s: str) -> str:
    ent = {"lt": "<", "gt": ">", "verbar": "|", "sol": "/"}
    for _ in range(4):  # nested codes: innermost first
        s = re.sub(r"E<(\w+)>", lambda m: ent.get(m.group(1), html.unescape(f"&{m.group(1)};")), s)
        s = re.sub(r"L<(?:[^<>|]*\|)?([^<>]*)>", lambda m: m.group(1).split("/")[-1].strip('"'), s)
        s = re.sub(r"[BICFSXZ]<<+\s(.*?)\s>>+", r"\1", s)
        s = re.sub(r"[BICFSXZ]<([^<>]*)>", r"\1", s)
    return s


def pod_paras(text: str) -> list[str]:
    out, in_pod, in_begin = [], True, False
    for block in re.split(r"\n\s*\n", text):
        if not block.strip():
            continue
        if block.startswith("=cut"):
            in_pod = False
            continue
        if block.startswith("=begin"):
            in_begin = True
            continue
        if block.startswith("=end"):
            in_begin = False
            continue
        if block.startswith("=pod") or block.startswith("=head") or block.startswith("=item"):
            in_pod = True
        if not in_pod or in_begin or block[0] in " \t":
            continue  # code outside pod, or a verbatim (code) paragraph
        if block.startswith("="):
            m = re.match(r"=(head\d|item)\s+(.*)", block, re.S)
            if not m:
                continue
            block = m.group(2)
        out.append(fold(pod_inline(block.replace("\n", " "))))
    return out


# ---------------------------------------------------------------- man pages (groff)

def man_paras(path: Path, macros: str = "-man") -> list[str]:
    src = gzip.decompress(path.read_bytes()).decode("utf-8", "replace")
    if src.lstrip().startswith(".so "):
        return []  # a link to another page
    # drop no-fill regions (examples, synopses of code) before rendering
    src = re.sub(r"^\.(nf|EX)\b.*?^\.(fi|EE)\b", "", src, flags=re.S | re.M)
    r = subprocess.run(["groff", macros, "-Tutf8", "-P-cbuo", "-rLL=200n", "-rHY=0"], input=src,
                       capture_output=True, text=True, errors="replace")
    out = []
    for block in re.split(r"\n\s*\n", r.stdout):
        lines = [l.strip() for l in block.splitlines() if l.strip()]
        if lines:
            out.append(fold(" ".join(lines)))
    return out[1:-1]  # page header and footer lines


# ---------------------------------------------------------------- Vim help files

def vim_paras(text: str) -> list[str]:
    out = []
    for block in re.split(r"\n\s*\n", text):
        lines = [l for l in block.splitlines() if l.strip() and not l.startswith(("\t\t", "        "))
                 and not re.match(r"^[=\-]{5,}$", l.strip())]
        p = " ".join(l.strip() for l in lines)
        p = re.sub(r"\*([^*\s]+)\*", "", p)  # help tags
        p = re.sub(r"\|([^|\s]+)\|", r"\1", p)  # links
        p = fold(p.replace(" >", "").replace("<", "").replace("`", ""))
        if p:
            out.append(p)
    return out


# ---------------------------------------------------------------- dictd databases

def dictd_entries(dict_dz: Path) -> list[str]:
    data = gzip.decompress(dict_dz.read_bytes())
    idx = dict_dz.with_name(dict_dz.name.replace(".dict.dz", ".index"))
    b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

    def num(s):
        n = 0
        for c in s:
            n = n * 64 + b64.index(c)
        return n

    spans = set()
    for line in idx.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and not parts[0].startswith("00-database"):
            spans.add((num(parts[1]), num(parts[2])))
    out = []
    for off, n in sorted(spans):
        e = data[off:off + n].decode("utf-8", "replace")
        paras = []
        for block in re.split(r"\n\s*\n", e):
            p = " ".join(l.strip() for l in block.splitlines() if l.strip())
            p = re.sub(r"\{([^}]*)\}", r"\1", p)
            p = fold(p)
            if p:
                paras.append(p)
        if paras and not re.match(r"00-?database", paras[0]):
            out.append("\n".join(paras))
    return out


def chunk_entries(entries: list[str], size: int = DICT_DOC_CHARS) -> list[str]:
    docs, cur, n = [], [], 0
    for e in entries:
        cur.append(e)
        n += len(e)
        if n >= size:
            docs.append("\n".join(cur))
            cur, n = [], 0
    if cur:
        docs.append("\n".join(cur))
    return docs


# ---------------------------------------------------------------- SWORD modules

OSIS_BOOKS = 66


def sword_blocks(moddir: Path) -> list[str]:
    """Every compressed block of a zText/zCom module (one block = a book or a chapter)."""
    out = []
    for test in ("ot", "nt"):
        for ext in ("b", "c"):
            bzs, bzz = moddir / f"{test}.{ext}zs", moddir / f"{test}.{ext}zz"
            if not bzs.exists():
                continue
            idx, blob = bzs.read_bytes(), bzz.read_bytes()
            for i in range(0, len(idx) - 11, 12):
                off, size, _ = struct.unpack("<III", idx[i:i + 12])
                if size == 0:
                    continue
                raw = zlib.decompress(blob[off:off + size]).decode("utf-8", "replace")
                out.append(raw)
    return out


def osis_paras(raw: str) -> list[str]:
    # verse/entry boundaries in SWORD blocks are NULs or simply concatenated markup
    raw = re.sub(r"<note\b[^>]*type=\"(?:crossReference|x-strongsMarkup)\"[^>]*>.*?</note>", " ", raw,
                 flags=re.S)
    raw = re.sub(r"<(?:lb|p|div|title|l|lg|br)\b[^>]*/?>|</(?:p|div|title|l|lg)>|\x00", "\n", raw)
    raw = re.sub(r"<[^>]+>", "", raw)
    raw = html.unescape(raw)
    paras = [fold(l) for l in raw.split("\n")]
    # join the short verse fragments of a chapter into paragraphs of a few hundred chars
    out, cur = [], []
    for p in paras:
        if not p:
            continue
        cur.append(p)
        if sum(map(len, cur)) > 600:
            out.append(" ".join(cur))
            cur = []
    if cur:
        out.append(" ".join(cur))
    return out


# ---------------------------------------------------------------- KJV via the package's own tool

def kjv_docs(root: Path) -> list[str]:
    tool = root / "bible-kjv/usr/bin/bible"
    lib = root / "bible-kjv-text/usr/lib"
    r = subprocess.run([str(tool), "-p", str(lib), "gen1:1-rev22:21"], capture_output=True,
                       text=True, errors="replace", check=True)
    docs, cur, book = [], [], None
    for line in r.stdout.splitlines():
        m = re.match(r"^([1-3]?\s?[A-Z][A-Za-z ]+) (\d+)$", line.strip())
        if m and not line.startswith(" "):
            if m.group(1) != book and cur:
                docs.append("\n".join(cur))
                cur = []
            book = m.group(1)
            cur.append(line.strip() + ".")
            continue
        if line.strip():
            v = re.sub(r"^\s*\d+\s+", "", line).strip()
            cur[-1] = cur[-1] + " " + v
    if cur:
        docs.append("\n".join(cur))
    return [fold_lines(d) for d in docs]


def fold_lines(d: str) -> str:
    return "\n".join(fold(l) for l in d.split("\n") if l.strip())


# ---------------------------------------------------------------- sources

def files(root: Path, pkg: str, pattern: str, exclude: str | None = None) -> list[Path]:
    fs = sorted(p for p in (root / pkg).glob(pattern) if p.is_file())
    if exclude:
        fs = [p for p in fs if not re.search(exclude, str(p))]
    return fs


def read(p: Path) -> str:
    b = p.read_bytes()
    if p.suffix == ".gz":
        b = gzip.decompress(b)
    return b.decode("utf-8", "replace")


def per_file(fs: list[Path], fn) -> list[str]:
    return ["\n".join(fn(read(p))) for p in fs]


HTML_IDX = r"genindex|search\.html|py-modindex|/_modules/|/_sources/|-Index\.html|zsh_toc|/index\.html$"

# (source name, packages, producer of raw documents (lists of paragraphs joined by \n))
SOURCES: list[tuple[str, tuple[str, ...], object]] = [
    ("kjv", ("bible-kjv-text", "bible-kjv"), lambda r: kjv_docs(r)),
    ("web", ("sword-text-web",), lambda r: ["\n".join(osis_paras(b)) for b in sword_blocks(
        r / "sword-text-web/usr/share/sword/modules/texts/ztext/engWEB2015eb")]),
    ("mhcc", ("sword-comm-mhcc",), lambda r: ["\n".join(osis_paras(b)) for b in sword_blocks(
        r / "sword-comm-mhcc/usr/share/sword/modules/comments/zcom/mhcc")]),
    ("tdavid", ("sword-comm-tdavid",), lambda r: ["\n".join(osis_paras(b)) for b in sword_blocks(
        r / "sword-comm-tdavid/usr/share/sword/modules/comments/zcom/tdavid")]),
    ("scofield", ("sword-comm-scofield",), lambda r: ["\n".join(osis_paras(b)) for b in sword_blocks(
        r / "sword-comm-scofield/usr/share/sword/modules/comments/zcom/scofield")]),
    ("gcide", ("dict-gcide",), lambda r: chunk_entries(dictd_entries(
        r / "dict-gcide/usr/share/dictd/gcide.dict.dz"))),
    ("wordnet", ("dict-wn",), lambda r: chunk_entries(dictd_entries(
        r / "dict-wn/usr/share/dictd/wn.dict.dz"))),
    ("foldoc", ("dict-foldoc",), lambda r: chunk_entries(dictd_entries(
        r / "dict-foldoc/usr/share/dictd/foldoc.dict.dz"))),
    ("vera", ("dict-vera",), lambda r: chunk_entries(dictd_entries(
        r / "dict-vera/usr/share/dictd/vera.dict.dz"))),
    ("jargon", ("dict-jargon",), lambda r: chunk_entries(dictd_entries(
        r / "dict-jargon/usr/share/dictd/jargon.dict.dz"))),
    ("devil", ("dict-devil",), lambda r: chunk_entries(dictd_entries(
        r / "dict-devil/usr/share/dictd/devil.dict.dz"))),
    ("elements", ("dict-elements",), lambda r: chunk_entries(dictd_entries(
        r / "dict-elements/usr/share/dictd/elements.dict.dz"))),
    ("python-doc", ("python3.11-doc",), lambda r: per_file(files(
        r, "python3.11-doc", "usr/share/doc/python3.11/html/_sources/**/*.txt"), rst_paras)),
    ("linux-doc", ("linux-doc-6.1",), lambda r: per_file(files(
        r, "linux-doc-6.1", "usr/share/doc/linux-doc-6.1/html/_sources/**/*.txt",
        r"/translations/"), rst_paras)),
    ("cmake-doc", ("cmake-doc",), lambda r: per_file(files(
        r, "cmake-doc", "usr/share/doc/cmake-data/html/_sources/**/*.txt"), rst_paras)),
    ("sphinx-doc", ("sphinx-doc",), lambda r: per_file(files(
        r, "sphinx-doc", "usr/share/doc/sphinx-doc/html/_sources/**/*.txt"), rst_paras)),
    ("sqlalchemy-doc", ("python-sqlalchemy-doc",), lambda r: per_file(files(
        r, "python-sqlalchemy-doc", "usr/share/doc/python-sqlalchemy-doc/rst/**/*.rst"), rst_paras)),
    ("perl-doc", ("perl-doc",), lambda r: per_file(files(
        r, "perl-doc", "usr/share/perl/*/pod/*.pod"), pod_paras)),
    ("postgresql-doc", ("postgresql-doc-15",), lambda r: per_file(files(
        r, "postgresql-doc-15", "usr/share/doc/postgresql-doc-15/html/*.html", HTML_IDX), html_paras)),
    ("django-doc", ("python-django-doc",), lambda r: per_file(files(
        r, "python-django-doc", "usr/share/doc/python-django-doc/html/**/*.html", HTML_IDX), html_paras)),
    ("sqlite-doc", ("sqlite3-doc",), lambda r: per_file(files(
        r, "sqlite3-doc", "usr/share/doc/sqlite3/**/*.html", HTML_IDX), html_paras)),
    ("apache-doc", ("apache2-doc",), lambda r: per_file(files(
        r, "apache2-doc", "usr/share/doc/apache2-doc/manual/en/**/*.html", HTML_IDX), html_paras)),
    ("git-doc", ("git-doc",), lambda r: per_file(files(
        r, "git-doc", "usr/share/doc/git-doc/**/*.html", HTML_IDX), html_paras)),
    ("nodejs-doc", ("nodejs-doc",), lambda r: per_file(files(
        r, "nodejs-doc", "usr/share/doc/nodejs/api/*.html", r"/all\.html$|/index\.html$"), html_paras)),
    ("zsh-doc", ("zsh-doc",), lambda r: per_file(files(
        r, "zsh-doc", "usr/share/doc/zsh-common/html/*.html", HTML_IDX), html_paras)),
    ("debian-handbook", ("debian-handbook",), lambda r: per_file(files(
        r, "debian-handbook", "usr/share/doc/debian-handbook/html/en-US/*.html", HTML_IDX), html_paras)),
    ("harden-doc", ("harden-doc",), lambda r: per_file(files(
        r, "harden-doc", "usr/share/doc/harden-doc/html/en-US/*.html", HTML_IDX), html_paras)),
    ("debian-reference", ("debian-reference-en",), lambda r: per_file(files(
        r, "debian-reference-en", "usr/share/debian-reference/*.en.html"), html_paras)),
    ("debian-policy", ("debian-policy",), lambda r: per_file(files(
        r, "debian-policy", "usr/share/doc/debian-policy/**/*.html", HTML_IDX), html_paras)),
    ("developers-reference", ("developers-reference",), lambda r: per_file(files(
        r, "developers-reference", "usr/share/developers-reference/*.html",
        HTML_IDX + r"|developers-reference\.html"), html_paras)),
    ("maint-guide", ("maint-guide",), lambda r: per_file(files(
        r, "maint-guide", "usr/share/doc/maint-guide/html/*.en.html"), html_paras)),
    ("debmake-doc", ("debmake-doc",), lambda r: per_file(files(
        r, "debmake-doc", "usr/share/doc/debmake-doc/html/*.en.html"), html_paras)),
    ("debian-faq", ("debian-faq",), lambda r: per_file(files(
        r, "debian-faq", "usr/share/doc/debian/FAQ/*.en.html"), html_paras)),
    ("gnu-standards", ("gnu-standards",), lambda r: per_file(files(
        r, "gnu-standards", "usr/share/doc/gnu-standards/*.html"), html_paras)),
    ("bash-doc", ("bash-doc",), lambda r: per_file(files(
        r, "bash-doc", "usr/share/doc/bash/bashref.html"), html_paras)),
    ("gnome-help", ("gnome-user-docs",), lambda r: per_file(files(
        r, "gnome-user-docs", "usr/share/help/C/**/*.page"), html_paras)),
    ("manpages", ("manpages", "manpages-dev"), lambda r: [
        "\n".join(man_paras(p)) for p in files(r, "manpages", "usr/share/man/man*/*.gz")
        + files(r, "manpages-dev", "usr/share/man/man*/*.gz")]),
    ("tcl-doc", ("tcl8.6-doc",), lambda r: [
        "\n".join(man_paras(p)) for p in files(r, "tcl8.6-doc", "usr/share/man/man*/*.gz")]),
    ("freebsd-manpages", ("freebsd-manpages",), lambda r: [
        "\n".join(man_paras(p, "-mandoc")) for p in files(r, "freebsd-manpages", "usr/share/man/man*/*.gz")]),
    ("vim-doc", ("vim-runtime",), lambda r: per_file(files(
        r, "vim-runtime", "usr/share/vim/vim*/doc/*.txt"), vim_paras)),
    ("rust-doc", ("rust-doc",), lambda r: per_file(files(
        r, "rust-doc", "usr/share/doc/rust-doc/html/**/*.html",
        HTML_IDX + r"/html/src/|/implementors/|/print\.html$|/all\.html$|/sidebar-items|/toc\.html$"),
        html_paras)),
    ("openjdk-doc", ("openjdk-17-doc",), lambda r: per_file(files(
        r, "openjdk-17-doc", "usr/share/doc/openjdk-17-jre-headless/api/**/*.html",
        r"/class-use/|/index-files/|-tree\.html$|allclasses|allpackages|overview-|/index\.html$"),
        html_paras)),
    ("erlang-doc", ("erlang-doc",), lambda r: per_file(files(
        r, "erlang-doc", "usr/share/doc/erlang-doc/**/*.html", HTML_IDX + r"_index\.html$|/index\.html$"),
        html_paras)),
    ("qt-doc", ("qtbase5-doc-html",), lambda r: per_file(files(
        r, "qtbase5-doc-html", "usr/share/qt5/doc/**/*.html", r"-members\.html$|-obsolete\.html$"),
        html_paras)),
]


def split_long(paras: list[str]) -> list[str]:
    if sum(map(len, paras)) <= MAX_DOC_CHARS:
        return ["\n".join(paras)]
    return chunk_entries(paras, MAX_DOC_CHARS // 2)


def heldout(doc: str) -> bool:
    h = hashlib.sha256(doc.encode("utf-8")).digest()
    return int.from_bytes(h[:2], "big") < HELDOUT_PER_65536


def main(root: str, out: str, only: list[str]):
    r, o = Path(root), Path(out)
    (o / "train").mkdir(parents=True, exist_ok=True)
    (o / "heldout").mkdir(parents=True, exist_ok=True)
    seen_para: set[bytes] = set()
    seen_doc: set[bytes] = set()
    manifest = {}
    for name, pkgs, produce in SOURCES:
        if only and name not in only:
            continue
        if not all((r / p).is_dir() for p in pkgs):
            print(f"{name}: package folder missing ({', '.join(pkgs)}), skipped", file=sys.stderr)
            continue
        raw_docs = produce(r)
        train, held, raw_chars, dropped = [], [], 0, 0
        for d in raw_docs:
            keep = []
            for p in d.split("\n"):
                raw_chars += len(p)
                if not is_prose(p):
                    dropped += len(p)
                    continue
                k = hashlib.blake2b(p.lower().encode(), digest_size=12).digest()
                if k in seen_para:
                    dropped += len(p)
                    continue
                seen_para.add(k)
                keep.append(p)
            if not keep or sum(map(len, keep)) < 200:
                continue
            for doc in split_long(keep):
                k = hashlib.blake2b(doc.encode(), digest_size=16).digest()
                if k in seen_doc:
                    continue
                seen_doc.add(k)
                (held if heldout(doc) else train).append(doc)
        info = {"packages": list(pkgs), "docs_train": len(train), "docs_heldout": len(held),
                "chars_train": sum(map(len, train)), "chars_heldout": sum(map(len, held)),
                "chars_raw": raw_chars, "chars_dropped": dropped}
        for split, docs in (("train", train), ("heldout", held)):
            text = "\n\n".join(docs) + "\n"
            (o / split / f"{name}.txt").write_text(text, encoding="utf-8")
            info[f"sha256_{split}"] = hashlib.sha256(text.encode("utf-8")).hexdigest()
        manifest[name] = info
        print(f"{name:22s} docs {len(train):6d}+{len(held):4d}  chars {info['chars_train']:11,d}"
              f" + {info['chars_heldout']:9,d}  (dropped {dropped:,d} of {raw_chars:,d})", flush=True)
    mpath = o / "manifest.json"
    old = json.loads(mpath.read_text()) if only and mpath.exists() else {}
    old.update(manifest)
    mpath.write_text(json.dumps(old, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
