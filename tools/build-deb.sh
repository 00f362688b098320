#!/usr/bin/env bash
# make deb: builds the Debian package postgresql-15-everest (see docs/packaging.md) with
# dpkg-buildpackage in a scratch copy of the tree, since dpkg-buildpackage writes its results
# into the parent directory of the tree it builds. The .deb files end up in build/.
# Needs: dpkg-dev debhelper postgresql-server-dev-all g++ libboost-json1.81-dev libre2-dev.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
scratch=$(mktemp -d /tmp/everest-deb-build.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
mkdir "$scratch/src"
# The files git knows, committed or not; objects and libraries of a developer build stay out.
git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$scratch/src"
(cd "$scratch/src" && dpkg-buildpackage -us -uc -b -j"$(nproc)")
mkdir -p "$top/build"
cp "$scratch"/*.deb "$top/build/"
ls -l "$top"/build/*.deb
