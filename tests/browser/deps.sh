#!/usr/bin/env bash
# tests/browser/deps.sh: installs the test tooling of tests/browser
# (package-lock.json: terser, playwright-core, @msgpack/msgpack, and for the
# OpenAPI checks @apidevtools/swagger-parser, ajv, ajv-formats) into
# tests/browser/node_modules with `npm ci` when it is missing or was installed
# from another package-lock.json. Never downloads a browser: playwright-core
# has no install step, and the tests use Debian's /usr/bin/chromium.
set -euo pipefail

dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
stamp=$dir/node_modules/.herenow-package-lock.json

if [ -f "$stamp" ] && cmp -s "$stamp" "$dir/package-lock.json"; then
    exit 0
fi
command -v npm >/dev/null || { echo "deps.sh: npm is needed (apt-get install npm)" >&2; exit 1; }
(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) >&2
cp "$dir/package-lock.json" "$stamp"
