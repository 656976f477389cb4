#!/usr/bin/env bash
# What travels to the GPU host: the working tree (tracked and untracked-not-ignored files) plus the
# carried paths, under a 64 MiB limit together. The pack (.gpu, ~46 MiB) and the corpus (.corpus,
# ~42 MiB) cannot both travel with everything tracked, so a run may leave tracked paths behind that
# it does not read (a second model's weights, plots, result files):
#
#   bash infra/gpu/travel.sh size [CARRIED...]   # MiB that would travel with these carried paths
#   bash infra/gpu/travel.sh leave PATH...       # untrack PATHs and ignore them until restore
#   bash infra/gpu/travel.sh restore             # track them again, exactly as before
#
# `leave` changes only the index and .git/info/exclude (the files stay on disk), records what it did
# in .git/kvrelay-travel, and refuses when something is staged, so `restore` cannot unstage a
# change of yours. Commit nothing between the two.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
state=.git/kvrelay-travel
exclude=.git/info/exclude
begin='# kvrelay-travel: begin' end='# kvrelay-travel: end'

mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
bytes_of() { # total size of existing regular files, NUL-separated on stdin
  xargs -0 -r stat -c %s -- 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'
}

case "${1:-}" in
size)
  shift
  tree=$(git ls-files -z -co --exclude-standard | bytes_of)
  carried=0
  for p in "$@"; do carried=$((carried + $(find "$p" -type f -print0 2>/dev/null | bytes_of))); done
  echo "tree $(mib "$tree") + carried $(mib "$carried") = $(mib $((tree + carried))) (limit 64 MiB)"
  [ $((tree + carried)) -le $((64 * 1048576)) ]
  ;;
leave)
  shift
  [ $# -gt 0 ] || { echo "travel.sh: leave PATH..." >&2; exit 2; }
  [ ! -e "$state" ] || { echo "travel.sh: paths already left behind ($state); restore first" >&2; exit 1; }
  git diff --cached --quiet || { echo "travel.sh: the index has staged changes; commit or unstage them" >&2; exit 1; }
  for p in "$@"; do
    [ -n "$(git ls-files -- "$p")" ] || { echo "travel.sh: $p holds no tracked file" >&2; exit 1; }
  done
  printf '%s\n' "$@" >"$state"
  git rm -r -q --cached -- "$@"
  { echo "$begin"; printf '/%s\n' "$@"; echo "$end"; } >>"$exclude"
  echo "left behind until 'travel.sh restore': $*"
  ;;
restore)
  [ -e "$state" ] || { echo "travel.sh: nothing left behind"; exit 0; }
  mapfile -t paths <"$state"
  git reset -q -- "${paths[@]}"
  sed -i "/^$begin\$/,/^$end\$/d" "$exclude"
  rm -f "$state"
  git diff --quiet -- "${paths[@]}" && echo "tracked again: ${paths[*]}"
  ;;
*)
  echo "usage: travel.sh size [CARRIED...] | leave PATH... | restore" >&2
  exit 2
  ;;
esac
