#!/usr/bin/env bash
# Create benchmarks/.venv-bambi: a separate Python 3.12 virtual environment holding bambi 0.21.0.
# bambi 0.21 pins formulae < 0.7 while bayesmlm needs formulae 0.9, so bambi never shares the
# package's own venv. Usage (from anywhere): bash benchmarks/setup_bambi.sh
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"  # so that python3 resolves to 3.12 via .python-version

version="$(python3 --version 2>&1)"
case "$version" in
  "Python 3.12."*) echo "using $version ($(command -v python3))" ;;
  *) echo "ERROR: python3 in $repo_root is '$version', need Python 3.12" >&2; exit 1 ;;
esac

venv="benchmarks/.venv-bambi"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install "bambi==0.21.0"

# nutpie is optional (lets bambi_worker.py use --sampler nutpie); keep going if it does not resolve.
if ! "$venv/bin/python" -m pip install nutpie; then
  echo "WARNING: nutpie did not install into $venv; --sampler nutpie will be unavailable" >&2
fi

"$venv/bin/python" -c "import bambi, pymc, pytensor, arviz; print('bambi', bambi.__version__, 'imports OK')"
echo "resolved versions:"
"$venv/bin/python" -m pip freeze | grep -i -E "bambi|pymc|pytensor|arviz|formulae|numpy|nutpie"
