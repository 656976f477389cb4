#!/usr/bin/env bash
# Reproduces the public-domain English corpus used to train kvrelay-tiny.
# Sources (Debian bookworm packages, fetched with apt-get download, unpacked with dpkg -x):
#   bible-kjv-text + bible-kjv : King James Version (1611), copyright expired
#                                (decompressed with the package's own `bible` program)
#   dict-devil                 : Ambrose Bierce, The Devil's Dictionary (1911), public domain
#   dict-jargon                : The Jargon File 4.4.7, placed in the public domain
# Output: .cache/text/corpus/{kjv,devil,jargon}.txt (git-ignored; never committed).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
dir="$root/.cache/text"
mkdir -p "$dir/debs" "$dir/root" "$dir/corpus"
cd "$dir/debs"
if ! ls bible-kjv-text_*.deb bible-kjv_*.deb dict-devil_*.deb dict-jargon_*.deb >/dev/null 2>&1; then
  apt-get download bible-kjv-text bible-kjv dict-devil dict-jargon
fi
for f in *.deb; do dpkg -x "$f" "$dir/root"; done
"$dir/root/usr/bin/bible" -p "$dir/root/usr/lib" "gen1:1-rev22:21" > "$dir/corpus/kjv.raw"
zcat "$dir/root/usr/share/dictd/devil.dict.dz" > "$dir/corpus/devil.raw"
zcat "$dir/root/usr/share/dictd/jargon.dict.dz" > "$dir/corpus/jargon.raw"
python3 "$root/infra/train/clean_text.py" "$dir/corpus"
sha256sum "$dir"/corpus/*.txt
