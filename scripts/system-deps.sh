#!/usr/bin/env bash
# Install the Debian packages the embedded lab needs (iproute2 for namespaces and links, iptables for
# the VPC CNI's and kube-proxy's rules) when they are missing. Needs root; otherwise says what to install.
set -euo pipefail

# Optional, for the UI check only (tests/ui): Debian's Chromium, headless. `make run` never needs it.
#   scripts/system-deps.sh --with-chromium
install_chromium() {
  command -v chromium >/dev/null 2>&1 && return 0
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "the UI check needs Chromium (as root: apt-get install chromium); tests/ui will be skipped" >&2
    return 0
  fi
  echo "installing chromium for the UI check" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null \
    || echo "chromium could not be installed; tests/ui will be skipped" >&2
}
if [ "${1:-}" = "--with-chromium" ]; then
  install_chromium
fi

missing=()
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v iptables-restore >/dev/null 2>&1 || missing+=(iptables)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "peerprobe's lab needs these Debian packages: ${missing[*]} (install them as root: apt-get install ${missing[*]})" >&2
  exit 0  # the model, predict and the unit tests work without them; lab tests skip with this reason
fi
echo "installing ${missing[*]} for the lab" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
