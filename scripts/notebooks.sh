#!/usr/bin/env bash
# Executes every notebook in notebooks/ top to bottom with the tslab TypeScript kernel and fails on any cell error.
#
#   npm run notebooks                       # execute into a temporary folder (the committed notebooks are untouched)
#   npm run notebooks -- --inplace          # execute and write the outputs back into notebooks/*.ipynb
#   npm run notebooks -- 01-step-by-step    # only the notebooks whose file name contains one of the arguments
#   FHENET_NOTEBOOK_QUICK=1 npm run notebooks   # quick mode (what CI runs)
#
# Needs Jupyter from Debian (jupyter-nbconvert, python3-ipykernel, jupyter-client) and `npm ci` (tslab is a dev
# dependency). The tslab kernelspec is written under .cache/jupyter (git-ignored) and found through JUPYTER_PATH,
# so nothing is installed outside the checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

JUPYTER=${JUPYTER:-/usr/bin/jupyter}
PYTHON=${PYTHON:-/usr/bin/python3}
if [ ! -x "$JUPYTER" ]; then
  echo "notebooks: $JUPYTER not found; install Jupyter: apt-get install jupyter-nbconvert python3-ipykernel jupyter-client" >&2
  exit 1
fi
if [ ! -x node_modules/.bin/tslab ]; then
  echo "notebooks: node_modules/.bin/tslab not found; run npm ci" >&2
  exit 1
fi

# Register the kernel (TypeScript "tslab" and JavaScript "jslab") under a project-local prefix.
prefix=$root/.cache/jupyter
if [ ! -f "$prefix/share/jupyter/kernels/tslab/kernel.json" ] || ! grep -q "$root/node_modules/.bin/tslab" "$prefix/share/jupyter/kernels/tslab/kernel.json"; then
  node_modules/.bin/tslab install --python "$PYTHON" --prefix "$prefix" --binary "$root/node_modules/.bin/tslab" >/dev/null
fi
export JUPYTER_PATH=$prefix/share/jupyter${JUPYTER_PATH:+:$JUPYTER_PATH}

inplace=0
filters=()
for a in "$@"; do
  case $a in
    --inplace) inplace=1 ;;
    *) filters+=("$a") ;;
  esac
done

out=$(mktemp -d "${TMPDIR:-/tmp}/fhenet-notebooks-XXXXXX")
trap 'rm -rf "$out"' EXIT
status=0
total_start=$(date +%s)
for nb in notebooks/*.ipynb; do
  name=$(basename "$nb")
  if [ ${#filters[@]} -gt 0 ]; then
    keep=0
    for f in "${filters[@]}"; do [[ $name == *"$f"* ]] && keep=1; done
    [ $keep = 1 ] || continue
  fi
  start=$(date +%s)
  if [ $inplace = 1 ]; then target=(--inplace); else target=(--output-dir "$out"); fi
  if "$JUPYTER" nbconvert --to notebook --execute "${target[@]}" \
      --ExecutePreprocessor.kernel_name=tslab --ExecutePreprocessor.timeout=900 "$nb" >"$out/$name.log" 2>&1; then
    echo "notebooks: $name ok ($(( $(date +%s) - start )) s)"
  else
    status=1
    echo "notebooks: $name FAILED ($(( $(date +%s) - start )) s)" >&2
    # nbconvert's message names the cell; tslab's error text is in the cell outputs.
    grep -v '^\s*File \|^\s*\^' "$out/$name.log" | tail -40 >&2
  fi
done
echo "notebooks: total $(( $(date +%s) - total_start )) s (quick mode: ${FHENET_NOTEBOOK_QUICK:-off})"
exit $status
