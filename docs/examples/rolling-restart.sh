#!/bin/sh
# /usr/local/bin/webcall-rolling-restart: a deploy that loses no call
# (docs/deployment-no-lost-calls.md). Restarts the webcall@ workers one at a time; each
# must answer ready again before the next one stops, so that one always takes the calls.
# tests/test_deploy_examples.py runs it against stand-in workers.
set -eu
PORTS=${PORTS:-"8001 8002"}
HOST=${HOST:-www.example.com}  # a host in ALLOWED_HOSTS
READY_WITHIN=${READY_WITHIN:-60}

for port in $PORTS; do
    # Back once the old process has drained and exited (SIGTERM; TimeoutStopSec at most).
    systemctl restart "webcall@$port"
    waited=0
    until curl -fs -m 2 -o /dev/null -H "Host: $HOST" \
        "http://127.0.0.1:$port/webcall/health/ready"; do
        waited=$((waited + 1))
        if [ "$waited" -ge "$READY_WITHIN" ]; then
            echo "webcall@$port is not ready after $READY_WITHIN s: the others stay as they are" >&2
            exit 1
        fi
        sleep 1
    done
    echo "webcall@$port is ready"
done
