#!/usr/bin/env bash
# Browser tests of the web UI (tests/ui/wallet.test.mjs): Debian's chromium,
# driven by playwright-core from npm (no browser download). Installs what is
# missing, builds the binary, runs the tests, and fails loudly if it cannot.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v chromium >/dev/null; then
  echo "installing Debian's chromium"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y chromium >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y chromium >/dev/null; } || {
    echo "FAIL: the UI tests need Debian's chromium, which could not be installed" >&2
    exit 1
  }
fi
# Emoji (the wallet's 💰, 🔥 and 🏆) in the screenshots.
if [ ! -e /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y fonts-noto-color-emoji >/dev/null 2>&1 ||
    echo "note: fonts-noto-color-emoji could not be installed; screenshots will lack emoji" >&2
fi
command -v node >/dev/null || { echo "FAIL: the UI tests need Node.js" >&2; exit 1; }
cargo build --quiet --bin gamify
npm ci --prefix tests/ui --no-audit --no-fund --loglevel=error
node tests/ui/wallet.test.mjs
