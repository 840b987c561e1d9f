#!/usr/bin/env bash
# Install the Debian packages peerprobe needs when they are missing: iproute2 for the lab's namespaces and
# links, iptables for the VPC CNI's and kube-proxy's rules, graphviz (dot) for the HTML report's drawings.
# With --with-chromium (what `make test` asks for), also Debian's Chromium, headless, for the UI check
# (tests/ui). Needs root; otherwise says what to install.
set -euo pipefail

missing=()
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v iptables-restore >/dev/null 2>&1 || missing+=(iptables)
command -v dot >/dev/null 2>&1 || missing+=(graphviz)
if [ "${1:-}" = "--with-chromium" ]; then
  command -v chromium >/dev/null 2>&1 || missing+=(chromium chromium-driver)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "peerprobe needs these Debian packages: ${missing[*]} (install them as root: apt-get install ${missing[*]})" >&2
  # The model, predict and the unit tests work without them; lab tests skip with this reason, the HTML report
  # falls back to hop lists without dot.
  exit 0
fi
echo "installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
