#!/bin/bash
# The image's HEALTHCHECK: GET /livez on the broker's health port, healthy on
# 200 ("the loops turn"), unhealthy on 503 (a stalled loop: restart me) or no
# answer. The runtime image has no curl, so this speaks HTTP through bash's
# /dev/tcp. The port and address are the broker's own variables
# (PLANTD_BROKER_HEALTH_PORT, PLANTD_BROKER_HEALTH_BIND), so a health port
# moved in a container is moved with the variable, not in the YAML file.
set -u

port=${PLANTD_BROKER_HEALTH_PORT:-8081}
host=${PLANTD_BROKER_HEALTH_BIND:-0.0.0.0}
case "$host" in
  0.0.0.0 | '*' | '') host=127.0.0.1 ;;  # all interfaces: loopback is one
  '::' | '[::]') host=::1 ;;
esac

if ! { exec 3<>"/dev/tcp/$host/$port"; } 2>/dev/null; then
  echo "healthcheck: nothing listens on $host:$port" >&2
  exit 1
fi
printf 'GET /livez HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$host" >&3
if ! IFS= read -r -t 3 status <&3; then
  echo "healthcheck: no answer from http://$host:$port/livez" >&2
  exit 1
fi
status=${status%$'\r'}
case "$status" in
  "HTTP/1."?" 200"*) exit 0 ;;
esac
echo "healthcheck: http://$host:$port/livez: $status" >&2
exit 1
