#!/usr/bin/env bash
# Executes every notebook in notebooks/ top to bottom with the tslab TypeScript kernel and fails on any cell error.
#
#   npm run notebooks                       # execute into a temporary folder (the committed notebooks are untouched)
#   npm run notebooks -- --inplace          # execute and write the outputs back into notebooks/*.ipynb
#   npm run notebooks -- 01-step-by-step    # only the notebooks whose file name contains one of the arguments
#   FHENET_NOTEBOOK_QUICK=1 npm run notebooks   # quick mode (what CI runs)
#   npm run notebooks:setup                 # only prepare (kernel + declarations) and print how to start Jupyter
#
# Needs Jupyter from Debian (jupyter-nbconvert, python3-ipykernel, jupyter-client) and `npm ci` (tslab is a dev
# dependency). The tslab kernelspec is written under .cache/jupyter (git-ignored) and found through JUPYTER_PATH,
# so nothing is installed outside the checkout. The kernelspec starts the kernel with NODE_OPTIONS='--import tsx
# --conditions=fhenet-source', so `import … from 'fhenet'` in a cell runs the TypeScript sources (the "fhenet-source"
# condition of package.json "exports"; consumers of the package get dist/); the type checker reads
# fhenet's declarations, built by notebooks/build-types.mjs into notebooks/node_modules/fhenet (git-ignored).
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
kernel_json=$prefix/share/jupyter/kernels/tslab/kernel.json
if [ ! -f "$kernel_json" ] || ! grep -q "$root/node_modules/.bin/tslab" "$kernel_json" || ! grep -q 'fhenet-source' "$kernel_json"; then
  node_modules/.bin/tslab install --python "$PYTHON" --prefix "$prefix" --binary "$root/node_modules/.bin/tslab" >/dev/null
  # tsx's loader in the kernel (and in the worker threads it starts): cells import fhenet's TypeScript sources.
  "$PYTHON" - "$kernel_json" <<'PY'
import json, sys
p = sys.argv[1]
spec = json.load(open(p))
spec["env"] = {"NODE_OPTIONS": "--import tsx --conditions=fhenet-source"}
json.dump(spec, open(p, "w"))
PY
fi
export JUPYTER_PATH=$prefix/share/jupyter${JUPYTER_PATH:+:$JUPYTER_PATH}

# fhenet's declarations for the cells' type checker (a no-op when the sources have not changed).
node notebooks/build-types.mjs

inplace=0
filters=()
for a in "$@"; do
  case $a in
    --inplace) inplace=1 ;;
    --setup)
      echo "notebooks: ready. Start Jupyter with the tslab (TypeScript) kernel from the repository root:"
      echo "  JUPYTER_PATH=$JUPYTER_PATH $JUPYTER notebook notebooks/"
      exit 0 ;;
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
    grep -v '^\s*File \|^\s*\^' "$out/$name.log" | cut -c1-300 | tail -40 >&2
  fi
done
echo "notebooks: total $(( $(date +%s) - total_start )) s (quick mode: ${FHENET_NOTEBOOK_QUICK:-off})"
exit $status
