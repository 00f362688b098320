#!/usr/bin/env bash
# make deb: builds the Debian package postgresql-<major>-everest (see docs/packaging.md) with
# dpkg-buildpackage in a scratch copy of the tree, since dpkg-buildpackage writes its results
# into the parent directory of the tree it builds. The .deb files end up in build/.
#
# The majors built are those in debian/pgversions (15, 17) that this system supports
# (pg_buildext supported-versions: 15 on Debian 12, 17 on Debian 13; PG_SUPPORTED_VERSIONS
# overrides) and whose server headers are installed (/usr/lib/postgresql/<major>/bin/pg_config).
# debian/control is regenerated for them in the copy with "pg_buildext updatecontrol", so the
# committed control file (generated on Debian 12: postgresql-15-everest) need not match.
# Needs: dpkg-dev debhelper postgresql-server-dev-all g++ libre2-dev and
# libboost-json1.81-dev (Debian 12) or libboost-json1.83-dev (Debian 13).
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)

wanted=$(pg_buildext supported-versions)
majors=()
for v in $wanted; do
  if [ -x "/usr/lib/postgresql/$v/bin/pg_config" ]; then majors+=("$v")
  else echo "build-deb: PostgreSQL $v is in debian/pgversions and supported here, but postgresql-server-dev-$v is not installed: skipped" >&2
  fi
done
if [ ${#majors[@]} -eq 0 ]; then
  echo "build-deb: nothing to build: debian/pgversions lists $(xargs <debian/pgversions)," \
       "this system supports $(/usr/share/postgresql-common/supported-versions | xargs)" \
       "and the server headers of none of them are installed (postgresql-server-dev-<major>)" >&2
  exit 1
fi
export PG_SUPPORTED_VERSIONS="${majors[*]}"
echo "build-deb: building for PostgreSQL ${majors[*]}"

scratch=$(mktemp -d /tmp/everest-deb-build.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
mkdir "$scratch/src"
# The files git knows, committed or not; objects and libraries of a developer build stay out.
# A tree without git history (an export, test/pg17.sh's copy) gets the same list from an empty
# repository whose work tree it is: every file its .gitignore files do not exclude.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$scratch/src"
else
  git init -q "$scratch/files-git"
  git --git-dir="$scratch/files-git/.git" --work-tree=. ls-files -o --exclude-standard -z |
    xargs -0 cp --parents -t "$scratch/src"
fi
(cd "$scratch/src" && pg_buildext updatecontrol && dpkg-buildpackage -us -uc -b -j"$(nproc)")
mkdir -p "$top/build"
cp "$scratch"/*.deb "$top/build/"
ls -l "$top"/build/*.deb
