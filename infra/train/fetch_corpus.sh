#!/usr/bin/env bash
# Fetches and cleans the large English training corpus of the second model (infra/train/CORPUS.md):
# Debian bookworm packages, fetched with `apt-get download`, unpacked with `dpkg -x` into
# .cache/corpus/root/<package>/ (never installed), cleaned by clean_corpus.py into
#   .cache/corpus/out/train/<source>.txt  and  .cache/corpus/out/heldout/<source>.txt
# plus out/manifest.json (per source: packages, documents, characters, sha256) and
# out/packages.tsv (package, version, source package, size of the .deb).
# Everything is under .cache/ (git-ignored): the corpus is never committed.
# Needs: apt-get (Debian bookworm lists), dpkg, python3, groff (man pages). ~284 MB of .debs,
# ~1.9 GB unpacked, ~200 MB of text; about 10 minutes on a 2-core machine (HTML parsing).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
dir="$root/.cache/corpus"
mkdir -p "$dir/debs" "$dir/root"

# Every package here had its /usr/share/doc/<pkg>/copyright read; licences are in CORPUS.md.
packages=(
  bible-kjv-text bible-kjv sword-text-web sword-comm-mhcc sword-comm-tdavid sword-comm-scofield
  dict-gcide dict-wn dict-foldoc dict-vera dict-jargon dict-devil dict-elements
  python3.11-doc linux-doc-6.1 cmake-doc sphinx-doc python-sqlalchemy-doc perl-doc postgresql-doc-15
  python-django-doc sqlite3-doc apache2-doc git-doc nodejs-doc zsh-doc debian-handbook harden-doc
  debian-reference-en debian-policy developers-reference maint-guide debmake-doc debian-faq
  gnu-standards bash-doc gnome-user-docs manpages manpages-dev tcl8.6-doc
  freebsd-manpages vim-runtime rust-doc openjdk-17-doc erlang-doc qtbase5-doc-html
)

cd "$dir/debs"
missing=()
for p in "${packages[@]}"; do
  ls "${p}"_*.deb >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then apt-get download "${missing[@]}"; fi

printf 'package\tversion\tsource\tdeb_bytes\n' > "$dir/packages.tsv"
for p in "${packages[@]}"; do
  f=$(ls "${p}"_*.deb | sort | tail -1)
  if [ ! -d "$dir/root/$p/usr" ]; then
    mkdir -p "$dir/root/$p"
    dpkg -x "$f" "$dir/root/$p"
  fi
  printf '%s\t%s\t%s\t%s\n' "$p" "$(dpkg-deb -f "$f" Version)" \
    "$(dpkg-deb -f "$f" Source | cut -d' ' -f1 | sed "s/^$/$p/")" "$(stat -c %s "$f")" >> "$dir/packages.tsv"
done

rm -rf "$dir/out"
nice -n 10 python3 "$root/infra/train/clean_corpus.py" "$dir/root" "$dir/out"
cp "$dir/packages.tsv" "$dir/out/"
(cd "$dir/out" && sha256sum train/*.txt heldout/*.txt)
