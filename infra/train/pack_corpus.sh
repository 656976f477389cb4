#!/usr/bin/env bash
# Packs the cleaned corpus (.cache/corpus/out, from fetch_corpus.sh) into .corpus/ (git-ignored) so
# that it travels to a GPU host beside the working tree, and unpacks it there.
#
#   bash infra/train/pack_corpus.sh            # here: writes .corpus/corpus.tar.xz + .corpus/SHA256SUMS
#   bash infra/train/pack_corpus.sh --unpack   # on the host: .corpus/ -> .cache/corpus/out, checked
#
# Travel budget: the working tree and every carried path together may be 64 MiB. A Python training
# run needs no Deno pack (.gpu/), so .corpus/ gets what the tree leaves, less a 2 MiB margin.
# xz -9e (LZMA2, 64 MiB dictionary) compresses this text best among what the host can undo
# without extra packages (Python's lzma module or xz); zstd -19 --long was larger here.
# When the pack does not fit, sources are left out in DROP_ORDER (least prose first) until it
# does; what was left out is written to .corpus/LEFT_OUT and printed.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
src=.cache/corpus/out
pack=.corpus
limit_mib=${LIMIT_MIB:-64}
margin_mib=${MARGIN_MIB:-2}
# least useful first: API references and option lists, then manuals, never the books/dictionaries
DROP_ORDER=(${DROP_ORDER:-openjdk-doc qt-doc erlang-doc freebsd-manpages tcl-doc manpages rust-doc vim-doc cmake-doc zsh-doc})

if [ "${1:-}" = "--unpack" ]; then
  [ -f "$pack/corpus.tar.xz" ] || { echo "pack_corpus.sh: no $pack/corpus.tar.xz (carry .corpus)" >&2; exit 1; }
  mkdir -p "$src"
  if command -v xz >/dev/null; then
    xz -dc "$pack/corpus.tar.xz" | tar -xf - -C "$src"
  else
    python3 -c 'import lzma,sys,tarfile; tarfile.open(fileobj=lzma.open(sys.argv[1])).extractall(sys.argv[2])' \
      "$pack/corpus.tar.xz" "$src"
  fi
  (cd "$src" && sha256sum -c --quiet "$root/$pack/SHA256SUMS")
  echo "corpus unpacked into $src: $(cat "$src"/train/*.txt | wc -c) bytes of training text"
  exit 0
fi

[ -d "$src/train" ] || { echo "pack_corpus.sh: no $src/train; run infra/train/fetch_corpus.sh first" >&2; exit 1; }
mkdir -p "$pack"
tree=$(git ls-files -z --cached --others --exclude-standard | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1)
budget=$(( (limit_mib - margin_mib) * 1048576 - tree ))
mib() { awk -v b="$1" 'BEGIN { printf "%.2f MiB", b / 1048576 }'; }
echo "working tree $(mib "$tree"); budget for .corpus $(mib "$budget")"

left_out=()
while true; do
  files=()
  for f in "$src"/train/*.txt "$src"/heldout/*.txt; do
    name=$(basename "$f" .txt)
    skip=0
    for d in "${left_out[@]}"; do [ "$d" = "$name" ] && skip=1; done
    [ $skip = 1 ] || files+=("${f#"$src"/}")
  done
  files+=(manifest.json)
  [ -f "$src/packages.tsv" ] && files+=(packages.tsv)
  (cd "$src" && sha256sum "${files[@]}") > "$pack/SHA256SUMS"
  tar -cf - -C "$src" --sort=name --owner=0 --group=0 --mtime=@0 "${files[@]}" \
    | xz -9e -T1 > "$pack/corpus.tar.xz.tmp"
  mv "$pack/corpus.tar.xz.tmp" "$pack/corpus.tar.xz"
  size=$(stat -c %s "$pack/corpus.tar.xz")
  raw=$(cd "$src" && cat "${files[@]}" | wc -c)
  echo "corpus.tar.xz $(mib "$size") from $(mib "$raw") ($(awk -v a="$size" -v b="$raw" 'BEGIN{printf "%.1f%%", 100*a/b}'))" \
    "left out: ${left_out[*]:-none}"
  [ "$size" -le "$budget" ] && break
  next=""
  for d in "${DROP_ORDER[@]}"; do
    in=0
    for x in "${left_out[@]}"; do [ "$x" = "$d" ] && in=1; done
    if [ $in = 0 ] && [ -f "$src/train/$d.txt" ]; then next=$d; break; fi
  done
  [ -n "$next" ] || { echo "pack_corpus.sh: does not fit even without ${left_out[*]}" >&2; exit 1; }
  left_out+=("$next")
done
printf '%s\n' "${left_out[@]}" > "$pack/LEFT_OUT"
sha256sum "$pack/corpus.tar.xz"
echo "carry: .corpus (with the tree: $(mib $((tree + size))) of ${limit_mib} MiB)"
