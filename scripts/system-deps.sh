#!/usr/bin/env bash
# Install the Debian packages the embedded lab needs (iproute2 for namespaces and links, iptables for
# the VPC CNI's and kube-proxy's rules) when they are missing. Needs root; otherwise says what to install.
set -euo pipefail

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
