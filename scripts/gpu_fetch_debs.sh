#!/usr/bin/env bash
# Downloads the Debian 12 packages that scripts/gpu_check.sh unpacks on a bare GPU machine
# (which has CUDA, Python + torch, CMake and ninja, but no yaml-cpp, GoogleTest or stb, and
# no network) into .debs/. Run it here, then send .debs/ along with the working tree:
#
#   bash scripts/gpu_fetch_debs.sh      # ~2.5 MB in .debs/ (gitignored)
#
# Nothing is installed: `apt-get download` only fetches the .deb files.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEBS="$ROOT/.debs"

# What difflab-cli and the tests link (CMakeLists.txt, tests/CMakeLists.txt; no GUI, no
# benchmarks): the -dev package for headers and CMake / pkg-config files, and the runtime
# package for the shared library it points at. libgtest-dev carries the static libgtest.a
# and libgtest_main.a itself; libstb-dev's libstb.so links to libstb0's libstb.so.0;
# zlib1g-dev's libz.so to zlib1g's. pkgconf is the pkg-config that finds stb, for a
# machine without one.
PACKAGES=(
  libyaml-cpp-dev libyaml-cpp0.7
  libgtest-dev
  libstb-dev libstb0
  zlib1g-dev zlib1g
  pkgconf pkgconf-bin libpkgconf3
)

if ! apt-cache show "${PACKAGES[0]}" >/dev/null 2>&1; then
  echo "gpu_fetch_debs: refreshing the package lists (apt-get update)"
  apt-get update -qq
fi

mkdir -p "$DEBS"
rm -f "$DEBS"/*.deb
cd "$DEBS"
# apt's sandbox user cannot write here when run as root; the download itself is the same.
apt-get download -o APT::Sandbox::User=root "${PACKAGES[@]}"
{
  echo "# Debian packages for scripts/gpu_check.sh ($(date -u +%F), $(. /etc/os-release && echo "$PRETTY_NAME"))"
  for f in *.deb; do
    printf '%s %s %s\n' "$(dpkg-deb -f "$f" Package)" "$(dpkg-deb -f "$f" Version)" \
      "$(sha256sum "$f" | cut -c1-16)"
  done
} > MANIFEST
cat MANIFEST
du -sh "$DEBS"
