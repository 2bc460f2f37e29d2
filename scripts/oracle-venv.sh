#!/usr/bin/env bash
# The reference implementation: the real Backend.AI 20.09 manager CLI from PyPI, in its own
# Python 3.8 venv (reference/services.md s.5). Conformance tests compare our etcd writes with it.
set -euo pipefail
dest=${1:-.venv-oracle}
if [ -x "$dest/bin/backend.ai" ] && [ -f "$dest/.installed" ]; then exit 0; fi
py=""
for c in "${PYTHON38:-}" "$HOME"/.pyenv/versions/3.8*/bin/python "$(command -v python3.8 || true)"; do
  if [ -n "$c" ] && [ -x "$c" ] && "$c" -c 'import sys; assert sys.version_info[:2]==(3,8)' 2>/dev/null; then py=$c; break; fi
done
if [ -z "$py" ]; then
  echo "Python 3.8 is needed for the Backend.AI 20.09 reference CLI and none was found." >&2
  echo "Install one, e.g.:  pyenv install 3.8.18   (or set PYTHON38=/path/to/python3.8)" >&2
  exit 2
fi
rm -rf "$dest"
"$py" -m venv "$dest"
"$dest/bin/pip" install -q --disable-pip-version-check "backend.ai-manager==20.9.29" 2>&1 | grep -v "is ignored\|DEPRECATION\|setup.py install\|pip 23.1\|discussion can be found" || true
"$dest/bin/backend.ai" --help >/dev/null
touch "$dest/.installed"
