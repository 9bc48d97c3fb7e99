#!/bin/sh
# Flags alone (`-js -m 8222`) are nats-server's: run it with them, as the official image does.
set -e
case "$1" in
  -*) set -- nats-server "$@" ;;
esac
exec "$@"
