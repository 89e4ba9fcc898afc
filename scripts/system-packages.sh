#!/usr/bin/env bash
# Installs the Debian packages the tests run for real, if any is missing: one
# `apt-get update`, then one `apt-get install -y` of what is missing. Idempotent and quick
# when everything is there. Needs root to install; otherwise it names what is missing.
#
#   scripts/system-packages.sh            # the test suite's packages
#   scripts/system-packages.sh PKG...     # these packages instead
set -euo pipefail

packages=("$@")
if [ ${#packages[@]} -eq 0 ]; then
    packages=(
        postgresql                                           # the store tests and the `data` template's database
        xvfb openbox xterm x11vnc websockify novnc xfonts-base  # the `desktop` template
        chromium chromium-driver                             # the browser tests
        gdb                                                  # the threads of a test run that hangs
    )
fi

missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "system-packages: missing Debian packages: ${missing[*]}; run: sudo apt-get install ${missing[*]}" >&2
    exit 1
fi
echo "system-packages: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >&2
apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
