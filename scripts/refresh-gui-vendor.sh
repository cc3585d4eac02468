#!/usr/bin/env bash
# Refresh the third-party JavaScript of the chat page from the npm registry.
#   scripts/refresh-gui-vendor.sh                 # the pinned versions below
#   MARKED=18.3.0 DOMPURIFY=3.5.1 scripts/refresh-gui-vendor.sh   # move the pins
# Copies each package's release file and licence unchanged into
# core/g4f_server/gui/static/vendor/ and records version and sha256 in VERSIONS.
# After moving a pin: update the defaults here, run the browser tests
# (tests/gui/), and say in the commit why.
set -euo pipefail
cd "$(dirname "$0")/.."

MARKED=${MARKED:-18.2.1}      # Markdown -> HTML (MIT)
DOMPURIFY=${DOMPURIFY:-3.5.0} # HTML sanitizer (Apache-2.0 or MPL-2.0)
dest=core/g4f_server/gui/static/vendor
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack --silent "marked@$MARKED" "dompurify@$DOMPURIFY" >/dev/null)
mkdir -p "$work/marked" "$work/dompurify"
tar xzf "$work/marked-$MARKED.tgz" -C "$work/marked"
tar xzf "$work/dompurify-$DOMPURIFY.tgz" -C "$work/dompurify"

cp "$work/marked/package/lib/marked.esm.js" "$dest/marked.esm.js"
cp "$work/marked/package/LICENSE" "$dest/LICENSE.marked.txt"
cp "$work/dompurify/package/dist/purify.min.js" "$dest/purify.min.js"
cp "$work/dompurify/package/LICENSE" "$dest/LICENSE.dompurify.txt"
cp "$work/dompurify/package/LICENSE-MPL" "$dest/LICENSE-MPL.dompurify.txt"

{
  echo "# package version file sha256 (written by scripts/refresh-gui-vendor.sh)"
  echo "marked $MARKED marked.esm.js $(sha256sum "$dest/marked.esm.js" | cut -d' ' -f1)"
  echo "dompurify $DOMPURIFY purify.min.js $(sha256sum "$dest/purify.min.js" | cut -d' ' -f1)"
} >"$dest/VERSIONS"
cat "$dest/VERSIONS"
