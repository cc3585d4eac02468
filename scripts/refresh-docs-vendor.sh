#!/usr/bin/env bash
# Refresh the OpenAPI viewer of /docs (RapiDoc) from the npm registry.
#   scripts/refresh-docs-vendor.sh                  # the pinned version below
#   RAPIDOC=9.3.9 scripts/refresh-docs-vendor.sh    # move the pin
# Copies the package's release file, its licence and the licences of what it bundles
# unchanged into core/g4f_server/gui/apidocs/vendor/ and records version and sha256 in
# VERSIONS. After moving a pin: update the default here, run tests/e2e/test_docs_browser.py,
# and say in the commit why.
# Why RapiDoc: the smallest viewer with "try it" that works offline (one 0.86 MB file,
# 0.22 MB gzipped; swagger-ui-dist needs 1.8 MB of script and 0.2 MB of CSS, Scalar more),
# and it renders the Markdown of the document. MIT.
set -euo pipefail
cd "$(dirname "$0")/.."

RAPIDOC=${RAPIDOC:-9.3.8}
dest=core/g4f_server/gui/apidocs/vendor
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack --silent "rapidoc@$RAPIDOC" >/dev/null)
mkdir -p "$work/rapidoc"
tar xzf "$work/rapidoc-$RAPIDOC.tgz" -C "$work/rapidoc"

cp "$work/rapidoc/package/dist/rapidoc-min.js" "$dest/rapidoc-min.js"
cp "$work/rapidoc/package/LICENSE.txt" "$dest/LICENSE.rapidoc.txt"
cp "$work/rapidoc/package/dist/rapidoc-min.js.LICENSE.txt" "$dest/LICENSE.rapidoc-bundled.txt"

{
  echo "# package version file sha256 (written by scripts/refresh-docs-vendor.sh)"
  echo "rapidoc $RAPIDOC rapidoc-min.js $(sha256sum "$dest/rapidoc-min.js" | cut -d' ' -f1)"
} >"$dest/VERSIONS"
cat "$dest/VERSIONS"
