#!/usr/bin/env bash
# The reference implementation: the real Backend.AI 20.09 manager CLI from PyPI, in its own
# Python 3.8 venv (docs/sandbox.md#the-oracle). Conformance tests compare our etcd writes with it.
set -euo pipefail
dest=${1:-.venv-oracle}
stamp="20.9.29+grpcio<1.45"
if [ -x "$dest/bin/backend.ai" ] && [ "$(cat "$dest/.installed" 2>/dev/null)" = "$stamp" ]; then exit 0; fi
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
# grpcio<1.45: newer grpcio refuses python-etcd3 0.12's auth token as call credentials on a
# plaintext channel (kragniz/python-etcd3#1876, grpc/grpc#29643), and the sandbox's etcd has auth on.
"$dest/bin/pip" install -q --disable-pip-version-check "backend.ai-manager==20.9.29" "grpcio<1.45" 2>&1 | grep -v "is ignored\|DEPRECATION\|setup.py install\|pip 23.1\|discussion can be found" || true
PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python "$dest/bin/backend.ai" --help >/dev/null
echo "$stamp" > "$dest/.installed"
