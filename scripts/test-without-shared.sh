#!/usr/bin/env bash
# Runs the tests that read fixtures or data sets from a copy of the checkout placed where no ../shared folder is beside
# it, with FHENET_SHARED pointing at an empty folder: evidence that none of them reads the reference folder (their
# fixtures are in tests/fixtures, their data sets in FHENET_DATA). CI runs it with FHENET_REQUIRE_DATA=1.
#
#   bash scripts/test-without-shared.sh [vitest files…]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/fhenet-noshared-XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/repo" "$work/empty-shared"
# Tracked and untracked-but-not-ignored files: the checkout as git sees it, without build outputs or caches.
(cd "$root" && git ls-files -co --exclude-standard -z) | (cd "$root" && tar --null -T - -cf -) | tar -C "$work/repo" -xf -
ln -s "$root/node_modules" "$work/repo/node_modules"
test ! -e "$work/shared"
files=("$@")
if [ ${#files[@]} -eq 0 ]; then
  # Test files reading the Brevitas fixtures, the peer arrays, CIFAR-10 and Fashion-MNIST — each kind at least once;
  # the slowest CIFAR file (tests/cifar/checkpoint.test.ts, ~2 min) is left to the main run.
  files=(tests/onnx/fixtures.test.ts tests/compiler/compiler.test.ts tests/datasets tests/cifar/smoke.test.ts tests/experiments/encrypted-images.test.ts tests/foundation/no-shared-folder.test.ts)
fi
cd "$work/repo"
echo "test-without-shared: running in $(pwd), with no shared folder beside it; FHENET_SHARED=$work/empty-shared (empty), FHENET_DATA=${FHENET_DATA:-<default>}"
FHENET_SHARED="$work/empty-shared" npx vitest run "${files[@]}"
