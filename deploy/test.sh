#!/usr/bin/env bash
# The whole gate: install what is missing, then format check, lint, types, and every test
# (unit, session traces, integration and end-to-end against real servers started by the tests).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
bash deploy/setup.sh

echo "== ruff format --check"; .venv/bin/ruff format --check .
echo "== ruff check"; .venv/bin/ruff check .
echo "== mypy --strict"; .venv/bin/mypy
echo "== pytest"; .venv/bin/pytest -q -p no:cacheprovider "$@"
