#!/usr/bin/env bash
# The embedded default: install what is missing, start the development stack (real backends on
# loopback with the demo accounts), then run the bridge in the foreground (XIMSS 127.0.0.1:11024,
# XMAP 127.0.0.1:11026, HTTP 127.0.0.1:8100).
# Ctrl-C stops the bridge and every server this script started.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
bash deploy/setup.sh

listen_port=${XIMSS_PORT:-11024}
http_port=${XIMSS_HTTP_PORT:-8100}
xmap_port=${XMAP_PORT:-11026}
mkdir -p .devstack
.venv/bin/python deploy/devstack.py start --root .devstack &
stack_pid=$!
cleanup() {
  kill "$stack_pid" 2>/dev/null || true
  wait "$stack_pid" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

# The stack prints its table once every server answers; wait for IMAP to accept connections.
for _ in $(seq 1 100); do
  if (exec 3<>/dev/tcp/127.0.0.1/10143) 2>/dev/null; then break; fi
  if ! kill -0 "$stack_pid" 2>/dev/null; then echo "dev stack failed to start" >&2; exit 1; fi
  sleep 0.1
done

.venv/bin/python deploy/devstack.py config --listen-port "$listen_port" --http-port "$http_port" \
  --xmap-port "$xmap_port" > .devstack/bridge.toml
echo "bridge: XIMSS on 127.0.0.1:$listen_port, XMAP on 127.0.0.1:$xmap_port," \
  "HTTP on 127.0.0.1:$http_port (config .devstack/bridge.toml)"
.venv/bin/ximss-bridge --config .devstack/bridge.toml serve
