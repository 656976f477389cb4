#!/usr/bin/env bash
# Packs the cleaned corpus (.cache/corpus/out, from fetch_corpus.sh) into .corpus/ (git-ignored) so
# that it travels to a GPU host beside the working tree, and unpacks it there.
#
#   bash infra/train/pack_corpus.sh            # here: .corpus/{train,heldout}/<source>.txt.xz, SHA256SUMS
#   bash infra/train/pack_corpus.sh --unpack   # on the host: .corpus/ -> .cache/corpus/out, checked
#
# Travel budget: the working tree and every carried path together may be 64 MiB. A Python training
# run needs no Deno pack (.gpu/), so .corpus/ gets what the tree leaves, less MARGIN_MIB (2).
# Each file is compressed alone with xz -9e (LZMA2, 64 MiB dictionary): what the host can undo
# without extra packages (xz, or Python's lzma), and within 0.2% of xz with text-tuned options;
# zstd -19 --long=27 was 1.7% larger on a 19 MB sample. Compressed copies are kept in
# .cache/corpus/xz and reused while newer than their source. One file per source makes the budget a sum:
# when the whole does not fit, sources are left out in DROP_ORDER (least prose first) until it
# does; what was left out is listed in .corpus/LEFT_OUT and printed.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
src=.cache/corpus/out
pack=.corpus
limit_mib=${LIMIT_MIB:-64}
margin_mib=${MARGIN_MIB:-2}
# least useful first: API references and option lists, then manuals; never books or dictionaries
read -r -a drop_order <<< "${DROP_ORDER:-qt-doc openjdk-doc erlang-doc freebsd-manpages tcl-doc rust-doc manpages vim-doc cmake-doc zsh-doc}"

if [ "${1:-}" = "--unpack" ]; then
  [ -f "$pack/SHA256SUMS" ] || { echo "pack_corpus.sh: no $pack/SHA256SUMS (carry .corpus)" >&2; exit 1; }
  mkdir -p "$src/train" "$src/heldout"
  for f in "$pack"/train/*.xz "$pack"/heldout/*.xz; do
    rel=${f#"$pack"/}
    if command -v xz >/dev/null; then
      xz -dc "$f" > "$src/${rel%.xz}" &
    else
      python3 -c 'import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' \
        "$f" "$src/${rel%.xz}" &
    fi
  done
  wait
  cp "$pack/manifest.json" "$src/"
  (cd "$src" && sha256sum -c --quiet "$root/$pack/SHA256SUMS")
  echo "corpus unpacked into $src: $(cat "$src"/train/*.txt | wc -c) bytes of training text"
  exit 0
fi

[ -d "$src/train" ] || { echo "pack_corpus.sh: no $src/train; run infra/train/fetch_corpus.sh first" >&2; exit 1; }
xzc=.cache/corpus/xz  # compressed copies, reused while newer than their source
mkdir -p "$xzc/train" "$xzc/heldout"
mib() { awk -v b="$1" 'BEGIN { printf "%.2f MiB", b / 1048576 }'; }
for f in "$src"/train/*.txt "$src"/heldout/*.txt; do
  rel=${f#"$src"/}
  if [ ! -f "$xzc/$rel.xz" ] || [ "$f" -nt "$xzc/$rel.xz" ]; then
    nice -n 10 xz -9e -T1 -c "$f" > "$xzc/$rel.xz.tmp" && mv "$xzc/$rel.xz.tmp" "$xzc/$rel.xz"
  fi
done
cp "$src/manifest.json" "$xzc/"

# drop sources (both splits) in order until the pack fits beside the tree
tree=$(git ls-files -z --cached --others --exclude-standard | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1)
budget=$(( (limit_mib - margin_mib) * 1048576 - tree ))
left_out=()
size_of() {  # bytes of .corpus without the sources in left_out
  local n=0 f name skip d
  for f in "$xzc"/train/*.xz "$xzc"/heldout/*.xz "$xzc"/manifest.json; do
    name=$(basename "$f" .txt.xz); skip=0
    for d in "${left_out[@]}"; do [ "$d" = "$name" ] && skip=1; done
    [ $skip = 1 ] || n=$((n + $(stat -c %s "$f")))
  done
  echo $n
}
size=$(size_of)
echo "working tree $(mib "$tree"); budget for .corpus $(mib "$budget"); all sources $(mib "$size")"
for d in "${drop_order[@]}"; do
  [ "$size" -le "$budget" ] && break
  [ -f "$xzc/train/$d.txt.xz" ] || continue
  left_out+=("$d")
  size=$(size_of)
  echo "  leaving out $d: $(mib "$size")"
done
[ "$size" -le "$budget" ] || { echo "pack_corpus.sh: $(mib "$size") does not fit in $(mib "$budget")" >&2; exit 1; }
rm -rf "$pack"
mkdir -p "$pack/train" "$pack/heldout"
cp "$xzc/manifest.json" "$pack/"
for f in "$xzc"/train/*.xz "$xzc"/heldout/*.xz; do
  name=$(basename "$f" .txt.xz); skip=0
  for d in "${left_out[@]}"; do [ "$d" = "$name" ] && skip=1; done
  [ $skip = 1 ] || ln -f "$f" "$pack/${f#"$xzc"/}"
done
printf '%s\n' "${left_out[@]}" > "$pack/LEFT_OUT"
(cd "$src" && for f in "$root/$pack"/train/*.xz "$root/$pack"/heldout/*.xz; do
  rel=${f#"$root/$pack"/}; sha256sum "${rel%.xz}"; done) > "$pack/SHA256SUMS"
raw=$(cd "$src" && awk '{print $2}' "$root/$pack/SHA256SUMS" | xargs cat | wc -c)
echo "packed $(mib "$raw") of text into $(mib "$size") ($(awk -v a="$size" -v b="$raw" 'BEGIN{printf "%.1f%%", 100*a/b}'))," \
  "left out: ${left_out[*]:-none}"
echo "carry: .corpus (with the tree: $(mib $((tree + size))) of ${limit_mib} MiB)"
cat "$pack/SHA256SUMS"
