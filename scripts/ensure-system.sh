#!/usr/bin/env bash
# Installs the system programs the sandbox and the tests run (etcd, dockerd, docker-registry,
# busybox-static, PostgreSQL server, curl, tmux). As root it uses apt-get; otherwise it prints
# the exact command and exits 2, because nothing else can install them.
set -euo pipefail
need=()
have() { command -v "$1" >/dev/null 2>&1; }
have etcd            || need+=(etcd-server)
have etcdctl         || need+=(etcd-client)
have dockerd         || need+=(docker.io)
have docker-registry || need+=(docker-registry)
# the sandbox's runnable kernel image is FROM scratch, so busybox must be the static build
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q "install ok installed" || need+=(busybox-static)
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || need+=(postgresql)
have curl            || need+=(curl)
have tmux            || need+=(tmux)
have runuser         || need+=(util-linux)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y ${need[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "missing system packages: ${need[*]}" >&2
  echo "run as root:  sudo sh -c '$cmd'" >&2
  exit 2
fi
echo "installing system packages: ${need[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
