#!/usr/bin/env bash
# The Debian package, end to end, on a clean system: builds postgresql-$PG_MAJOR-everest twice
# (the previous release and the current tree), then, in a chroot of the Debian release that
# ships that PostgreSQL major (12 for 15, 13 for 17: test/shell/deb.bash) where nothing was ever
# installed with "make install", installs the old package, uses the extension, installs the new
# package over it, restarts, runs ALTER EXTENSION everest UPDATE, and purges the package. A file
# missing from the package (an upgrade script, the control file, the library) shows up here and
# nowhere else, since every other suite runs against a "make install".
#
# Runs as root (debootstrap, chroot, mount). The host's PostgreSQL clusters and installed
# extension files are never touched: the packages are built with DESTDIR installs into the build
# trees, and the server runs inside the chroot with a Unix socket only (no TCP port). The host
# builds the packages, so it needs the same major's server headers (test/run.sh installs them);
# under make test-pg17 the "host" is the Debian 13 root of test/pg17.sh and the chroot is made
# inside it.
#
#   PG_MAJOR                 the PostgreSQL major (default 15), as for test/run.sh
#   EVEREST_DEB_OLD_COMMIT   the previous release's commit (default: test/shell/deb.bash's)
#   EVEREST_DEB_OLD_SRC_TAR  a "git archive" tarball of that commit, for a tree without git
#                            history (test/pg17.sh makes it on the host); its commit id, which
#                            git archive records in it, must be EVEREST_DEB_OLD_COMMIT
#   EVEREST_DEB_COMMIT       the current tree's commit, for its package version (default: HEAD)
#
# The chroot's base (debootstrap of the release plus postgresql-$PG_MAJOR) is cached in
# $EVEREST_DEB_CACHE (default /var/cache/everest-deb-chroot); each run works on a fresh copy of it
# that is deleted at the end, so no run sees what an earlier one installed. KEEP=1 keeps the
# work folder (the build logs, the chroot) for inspection; the mounts are always removed.
set -u
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/deb.bash"

PG_MAJOR=${PG_MAJOR:-15}
if ! deb_table "$PG_MAJOR"; then
  echo "not ok - test/shell/deb.bash knows PostgreSQL $PG_MAJOR (a Debian release and a previous release for it)"; exit 1
fi
# The previous release: its package is built from "git archive" of that commit (or the tarball
# given) with the current debian/ directory in place of its own (6a33cb3 has none) and a
# changelog entry of its own version.
OLD_COMMIT=${EVEREST_DEB_OLD_COMMIT:-$DEB_OLD_COMMIT}
OLD_TAR=${EVEREST_DEB_OLD_SRC_TAR:-}
RELEASE=$DEB_RELEASE
PKG=postgresql-$PG_MAJOR-everest
MIRROR=http://deb.debian.org/debian
CACHE=${EVEREST_DEB_CACHE:-/var/cache/everest-deb-chroot}
BASE=$CACHE/$RELEASE-pg$PG_MAJOR
PGBIN=/usr/lib/postgresql/$PG_MAJOR/bin
PORT=59432
SOCK=/tmp/everest-deb-sock
DATA=/var/tmp/everest-deb-data

if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    exec sudo -n env ROOT="$ROOT" KEEP="${KEEP:-}" PG_MAJOR="$PG_MAJOR" EVEREST_DEB_CACHE="$CACHE" \
      EVEREST_DEB_OLD_COMMIT="$OLD_COMMIT" EVEREST_DEB_OLD_SRC_TAR="$OLD_TAR" \
      EVEREST_DEB_COMMIT="${EVEREST_DEB_COMMIT:-}" bash "$0" "$@"
  fi
  echo "not ok - deb.sh runs as root (debootstrap, chroot, mount)"; exit 1
fi
for tool in debootstrap dpkg-buildpackage dh pg_buildext fakeroot git; do
  command -v "$tool" >/dev/null || { echo "not ok - $tool is installed on the host"; exit 1; }
done
[ -x "/usr/lib/postgresql/$PG_MAJOR/bin/pg_config" ] ||
  { echo "not ok - postgresql-server-dev-$PG_MAJOR is installed on the host (the packages are built there)"; exit 1; }

WORK=$(mktemp -d /var/tmp/everest-deb.XXXXXX)
R=$WORK/root            # this run's chroot
MOUNTS=()               # mount points to remove, in order of mounting
started=$SECONDS

# ---------------------------------------------------------------------------------------------
# Mounts and clean-up. Whatever happens, every mount made here is removed before the work folder
# is deleted (deleting through a live /proc mount must never happen).
# ---------------------------------------------------------------------------------------------
mount_in() {  # mount_in ROOT: /proc and a tmpfs on /dev/shm (PostgreSQL's dynamic shared memory)
  mkdir -p "$1/proc" "$1/dev/shm"
  mount -t proc proc "$1/proc" && MOUNTS+=("$1/proc") || return 1
  mount -t tmpfs -o size=256m,mode=1777,nosuid,nodev tmpfs "$1/dev/shm" && MOUNTS+=("$1/dev/shm") || return 1
}
kill_in() {  # kill_in ROOT: every process whose root directory is ROOT (a server left running)
  local p root
  for p in /proc/[0-9]*; do
    root=$(readlink "$p/root" 2>/dev/null) || continue
    [ "$root" = "$1" ] && kill -9 "${p#/proc/}" 2>/dev/null
  done
  return 0
}
unmount_all() {
  local i m
  for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
    m=${MOUNTS[i]}
    umount "$m" 2>/dev/null || { sleep 1; umount "$m" 2>/dev/null; } || umount -l "$m" 2>/dev/null
  done
  MOUNTS=()
}
mounts_under() { awk -v p="$1/" 'index($2, p) == 1 { print $2 }' /proc/mounts; }
cleanup() {
  trap '' INT TERM HUP   # a second interrupt must not cut the clean-up short
  if [ -n "${chroot_job:-}" ] && kill -0 "$chroot_job" 2>/dev/null; then kill -TERM "$chroot_job"; wait "$chroot_job"; fi
  [ -d "$R" ] && kill_in "$(readlink -f "$R")"
  unmount_all
  if [ -n "$(mounts_under "$WORK")" ]; then
    echo "# mounts left behind, not deleting $WORK: $(mounts_under "$WORK")"
    return
  fi
  if [ -n "${KEEP:-}" ]; then echo "# kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

inchroot() {  # inchroot ROOT COMMAND...: COMMAND in ROOT with a plain environment
  local root=$1; shift
  chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
    DEBIAN_FRONTEND=noninteractive "$@"
}

# ---------------------------------------------------------------------------------------------
# 1. The chroot: the cached base (made once), copied afresh for this run
# ---------------------------------------------------------------------------------------------
make_base() {
  PARTIAL=$BASE.partial.$$
  mkdir -p "$CACHE"
  debootstrap --variant=minbase "$RELEASE" "$PARTIAL" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || return 1
  cat >"$PARTIAL/etc/apt/sources.list" <<EOF
deb $MIRROR $RELEASE main
deb $MIRROR $RELEASE-updates main
deb http://deb.debian.org/debian-security $RELEASE-security main
EOF
  # No service may start inside the chroot while packages install, and postgresql-common must
  # not create its default cluster: the suite makes the only cluster, as it wants it.
  printf '#!/bin/sh\nexit 101\n' >"$PARTIAL/usr/sbin/policy-rc.d"
  chmod 755 "$PARTIAL/usr/sbin/policy-rc.d"
  mkdir -p "$PARTIAL/etc/postgresql-common"
  echo 'create_main_cluster = false' >"$PARTIAL/etc/postgresql-common/createcluster.conf"
  cp /etc/resolv.conf "$PARTIAL/etc/resolv.conf"
  mount_in "$PARTIAL" || return 1
  { inchroot "$PARTIAL" apt-get update -qq &&
    inchroot "$PARTIAL" apt-get install -y -qq -o Dpkg::Options::=--force-confold "postgresql-$PG_MAJOR" &&
    inchroot "$PARTIAL" apt-get clean; } >"$WORK/base-apt.log" 2>&1
  local rc=$?
  unmount_all
  [ $rc -eq 0 ] || return 1
  rm -rf "$BASE" && mv "$PARTIAL" "$BASE" && PARTIAL=
}

base_ready() { [ -x "$BASE$PGBIN/postgres" ]; }
(
  # This subshell's own clean-up: a base left half made is unmounted and deleted.
  trap 'unmount_all; if [ -n "${PARTIAL:-}" ] && [ -d "$PARTIAL" ]; then kill_in "$(readlink -f "$PARTIAL")"; unmount_all
        [ -z "$(mounts_under "$PARTIAL")" ] && rm -rf "$PARTIAL"; fi' EXIT
  trap 'exit 1' INT TERM
  # One run at a time makes the base or copies it (a second run would replace it mid-copy).
  mkdir -p "$CACHE"
  exec 8>"$BASE.lock"
  flock 8
  if ! base_ready; then make_base || { tail -20 "$WORK"/debootstrap.log "$WORK"/base-apt.log 2>/dev/null; exit 1; }; fi
  cp -a "$BASE" "$R"
) >"$WORK/chroot.log" 2>&1 &
chroot_job=$!

# ---------------------------------------------------------------------------------------------
# 2. The two packages, built on the host while the chroot is prepared
# ---------------------------------------------------------------------------------------------
default_version() { sed -nE "s/^default_version *= *'([^']+)'.*/\1/p" "$1/everest.control"; }
changelog_entry() {  # changelog_entry VERSION TEXT
  printf 'everest (%s) unstable; urgency=medium\n\n  * %s\n\n -- everest developers <everest@localhost>  %s\n\n' \
    "$1" "$2" "$(date -R)"
}
# Only this major is built: pg_buildext builds the majors in debian/pgversions that the system
# supports, which PG_SUPPORTED_VERSIONS narrows to this one (as tools/build-deb.sh narrows them to
# the installed ones), and debian/control is regenerated to list its package alone (removed
# first, so that a failed regeneration leaves none rather than the committed one).
build_deb() {  # build_deb SRC LOG: dpkg-buildpackage in SRC; the .deb lands in SRC/..
  (cd "$1" && export PG_SUPPORTED_VERSIONS=$PG_MAJOR && rm -f debian/control && pg_buildext updatecontrol &&
     DEB_BUILD_OPTIONS="noautodbgsym nocheck" dpkg-buildpackage -us -uc -b -j2) >"$2" 2>&1
}
control_packages() { sed -nE 's/^Package: *//p' "$1/debian/control" 2>&1 | tr '\n' ' '; }
# The .deb's own name and the PostgreSQL server packages it depends on.
deb_fields() {  # deb_fields DEB: "<Package> depends on <postgresql-... names>"
  echo "$(dpkg-deb -f "$1" Package 2>&1) depends on $(dpkg-deb -f "$1" Depends 2>&1 | tr ',|' '\n\n' |
    sed -E 's/^ *//; s/[ (].*//' | grep -E '^postgresql' | sort -u | tr '\n' ' ')"
}

# The old release: its tree, the current debian/ directory, a changelog of its own version.
OLD_SRC=$WORK/old/src
mkdir -p "$OLD_SRC"
if [ -z "$OLD_TAR" ]; then
  # A shallow clone may lack it: deepen from its origin once, else say so (a failure, not a skip).
  if ! git -C "$ROOT" cat-file -e "$OLD_COMMIT^{commit}" 2>/dev/null; then
    git -C "$ROOT" fetch -q --unshallow 2>/dev/null || git -C "$ROOT" fetch -q origin 2>/dev/null
  fi
  git -C "$ROOT" cat-file -e "$OLD_COMMIT^{commit}" 2>/dev/null ||
    echo "not ok - the previous release's commit $OLD_COMMIT is in this clone (a shallow clone needs: git fetch --unshallow; without git history, set EVEREST_DEB_OLD_SRC_TAR)"
  OLD_TAR=$WORK/old/src.tar
  git -C "$ROOT" archive -o "$OLD_TAR" "$OLD_COMMIT"
fi
# git archive writes the commit's full id into the tarball: it must be the commit named (an
# abbreviated id is its prefix; a name such as a tag is resolved where git history exists).
old_tar_commit=$(git get-tar-commit-id <"$OLD_TAR" 2>/dev/null)
old_full=$(git -C "$ROOT" rev-parse -q --verify "$OLD_COMMIT^{commit}" 2>/dev/null)
if [ -n "$old_tar_commit" ] && { [ "$old_tar_commit" = "$old_full" ] || [[ "$old_tar_commit" == "$OLD_COMMIT"* ]]; }; then
  old_tar_is=$OLD_COMMIT
else
  old_tar_is=${old_tar_commit:-"no commit id"}
fi
is "the old source ($OLD_TAR) is a git archive of $OLD_COMMIT" "$old_tar_is" "$OLD_COMMIT"
tar -x -C "$OLD_SRC" -f "$OLD_TAR"
OLD_VER=$(default_version "$OLD_SRC")
rm -rf "$OLD_SRC/debian"
cp -a "$ROOT/debian" "$OLD_SRC/"
changelog_entry "$OLD_VER" "Release $OLD_VER (commit $OLD_COMMIT), packaged by test/shell/deb.sh." \
  >"$OLD_SRC/debian/changelog"

# The current tree: the files git knows (committed or not, ignored ones left out, so no object
# or library of a developer build gets in). Its Debian version is the control file's
# default_version plus "+git<commit>", made here without editing the committed changelog: it
# sorts above the old package's even when both carry the same extension version.
# A tree without git history (the copy test/pg17.sh makes) gets the same list from an empty
# repository whose work tree is ROOT: every file that .gitignore does not exclude.
NEW_SRC=$WORK/new/src
mkdir -p "$NEW_SRC"
if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  (cd "$ROOT" && git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$NEW_SRC")
else
  git init -q "$WORK/files-git"
  (cd "$ROOT" && git --git-dir="$WORK/files-git/.git" --work-tree=. ls-files -o --exclude-standard -z |
     xargs -0 cp --parents -t "$NEW_SRC")
fi
NEW_VER=$(default_version "$NEW_SRC")
NEW_COMMIT=${EVEREST_DEB_COMMIT:-$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)}
is "the current tree's commit is known (git, or EVEREST_DEB_COMMIT): '$NEW_COMMIT'" \
   "$(echo "$NEW_COMMIT" | grep -cxE '[0-9a-f]{7,40}')" "1"
NEW_DEB_VER="$NEW_VER+git$NEW_COMMIT"
{ changelog_entry "$NEW_DEB_VER" "Built from the working tree by test/shell/deb.sh."
  cat "$ROOT/debian/changelog"; } >"$NEW_SRC/debian/changelog"

# The version is written in three places; a release changes them together (docs/packaging.md).
meta() { python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); p=m["provides"]["everest"]
print(m["version"], p["version"], p["file"])' "$ROOT/META.json" 2>&1; }
is "META.json's versions and install script are everest.control's default_version" \
   "$(meta)" "$NEW_VER $NEW_VER sql/everest--$NEW_VER.sql"
is "debian/changelog's latest entry is everest.control's default_version" \
   "$(sed -nE '1s/^everest \(([^)]+)\).*/\1/p' "$ROOT/debian/changelog")" "$NEW_VER"

echo "# PostgreSQL $PG_MAJOR on $RELEASE; old: $OLD_COMMIT, extension $OLD_VER; new: extension $NEW_VER, package $NEW_DEB_VER"
is "debian/pgversions lists $PG_MAJOR" "$(grep -cx "$PG_MAJOR" "$ROOT/debian/pgversions")" "1"
build_deb "$OLD_SRC" "$WORK/old/build.log"
is "the old tree's debian/control, regenerated for $PG_MAJOR, lists $PKG alone" "$(control_packages "$OLD_SRC")" "$PKG "
OLD_DEB=$(ls "$WORK"/old/"$PKG"_"$OLD_VER"_*.deb 2>/dev/null)
is "the package of $OLD_COMMIT ($OLD_VER) builds" "$([ -f "$OLD_DEB" ] && echo yes)" "yes"
build_deb "$NEW_SRC" "$WORK/new/build.log"
is "the current tree's debian/control, regenerated for $PG_MAJOR, lists $PKG alone" "$(control_packages "$NEW_SRC")" "$PKG "
NEW_DEB=$(ls "$WORK"/new/"$PKG"_"$NEW_DEB_VER"_*.deb 2>/dev/null)
is "the package of the current tree ($NEW_DEB_VER) builds" "$([ -f "$NEW_DEB" ] && echo yes)" "yes"
is "only $PKG was built, twice" "$(cd "$WORK" && ls old/*.deb new/*.deb 2>/dev/null | xargs -rn1 basename | sed 's/_.*//' | tr '\n' ' ')" "$PKG $PKG "
for deb in "$OLD_DEB" "$NEW_DEB"; do
  [ -f "$deb" ] && echo "# $(basename "$deb"): Depends: $(dpkg-deb -f "$deb" Depends)"
  [ -f "$deb" ] && is "$(basename "$deb") is $PKG and depends on postgresql-$PG_MAJOR alone of the servers" \
    "$(deb_fields "$deb")" "$PKG depends on postgresql-$PG_MAJOR "
done

wait "$chroot_job"; chroot_rc=$?
is "a clean $RELEASE chroot with postgresql-$PG_MAJOR is ready" "$chroot_rc" "0"
if [ ! -f "$OLD_DEB" ] || [ ! -f "$NEW_DEB" ] || [ "$chroot_rc" -ne 0 ]; then
  for f in "$WORK/old/build.log" "$WORK/new/build.log" "$WORK/chroot.log"; do
    [ -f "$f" ] && { echo "# $f:"; tail -30 "$f" | sed 's/^/#   /'; }
  done
  finish
fi
cp "$OLD_DEB" "$R/tmp/old.deb"
cp "$NEW_DEB" "$R/tmp/new.deb"

# ---------------------------------------------------------------------------------------------
# 3. Inside the chroot
# ---------------------------------------------------------------------------------------------
mount_in "$R" || { echo "not ok - /proc and /dev/shm mount in the chroot"; finish; }
cp /etc/resolv.conf "$R/etc/resolv.conf"
is "the chroot is Debian $RELEASE" "$(. "$R/etc/os-release" && echo "${VERSION_CODENAME:-}")" "$RELEASE"
ext_files() {  # every everest file in the server's library and extension directories
  inchroot "$R" find /usr/lib/postgresql/$PG_MAJOR/lib /usr/share/postgresql/$PG_MAJOR/extension -name 'everest*' | sort
}
is "no everest file in the fresh chroot" "$(ext_files)" ""

as_pg() { inchroot "$R" runuser -u postgres -- "$@"; }
pg_q() { as_pg "$PGBIN/psql" -h "$SOCK" -p "$PORT" -X -q -t -A -v ON_ERROR_STOP=1 -d ev "$@" 2>&1; }
pg_ctl_do() { as_pg "$PGBIN/pg_ctl" -D "$DATA" -l "$DATA.log" -w -t 60 "$@" >/dev/null 2>&1; }
# What dpkg says the installed package holds, and what it should hold: the library, the control
# file and every sql/everest--*.sql of the tree it was built from, upgrade scripts included.
listed() {
  inchroot "$R" dpkg -L "$PKG" |
    grep -E "^/usr/(lib/postgresql/$PG_MAJOR/lib|share/postgresql/$PG_MAJOR/extension)/everest" | xargs -rn1 basename | sort
}
expected() { { echo everest.so; echo everest.control; (cd "$1/sql" && ls everest--*.sql); } | sort; }
# Owned by root and writable by nobody else, every file and directory the package installs.
loose_files() {
  inchroot "$R" sh -c 'dpkg -L "$1" | while read -r f; do
    [ -e "$f" ] && find "$f" -maxdepth 0 \( ! -user root -o ! -group root -o -perm -o+w \) -print; done' sh "$PKG" |
    grep -vE '^/(usr|usr/lib|usr/share|usr/share/doc)$'
}
apt_install() {  # apt_install DEB: dependencies come from the mirror
  inchroot "$R" apt-get install -y -qq "/tmp/$1" >"$WORK/apt-$1.log" 2>&1 || { tail -20 "$WORK/apt-$1.log"; return 1; }
}
inchroot "$R" apt-get update -qq >"$WORK/apt-update.log" 2>&1

# a) the old release
apt_install old.deb
is "apt-get install ./old.deb (dependencies from the mirror)" "$?" "0"
is "the old package is installed" "$(inchroot "$R" dpkg-query -W -f '${Version}' "$PKG" 2>&1)" "$OLD_VER"
is "dpkg -L of the old package lists everest.so, everest.control and every sql/everest--*.sql of $OLD_COMMIT" \
   "$(listed | tr '\n' ' ')" "$(expected "$OLD_SRC" | tr '\n' ' ')"

mkdir -p "$R$SOCK"; chmod 700 "$R$SOCK"; inchroot "$R" chown postgres: "$SOCK"
as_pg "$PGBIN/initdb" -D "$DATA" -U postgres -E UTF8 --locale=C.UTF-8 -A trust >"$WORK/initdb.log" 2>&1
is "initdb as postgres" "$?" "0"
cat >>"$R$DATA/postgresql.conf" <<EOF
shared_preload_libraries = 'everest'
listen_addresses = ''
port = $PORT
unix_socket_directories = '$SOCK'
EOF
pg_ctl_do start
is "the server starts with everest preloaded" "$?" "0"
as_pg "$PGBIN/createdb" -h "$SOCK" -p "$PORT" ev
is "CREATE EXTENSION everest" "$(pg_q -c 'CREATE EXTENSION everest' && echo done)" "done"
is "extversion is the old release's" "$(pg_q -c "SELECT extversion FROM pg_extension WHERE extname = 'everest'")" "$OLD_VER"
for i in 1 2 3; do
  pg_q -c "SELECT everest.append_event('acct-$i', 'Deposited', '{\"amount\": $i}')" >/dev/null
done
is "three events appended and read back from \$all" \
   "$(pg_q -c "SELECT string_agg(stream || ':' || (data->>'amount'), ',' ORDER BY position) FROM everest.read_all_forward(0, 100)")" \
   "acct-1:1,acct-2:2,acct-3:3"

# b) the new package over the old one; the preloaded library changes only at a restart
apt_install new.deb
is "apt-get install ./new.deb over the old package" "$?" "0"
is "the new package is installed" "$(inchroot "$R" dpkg-query -W -f '${Version}' "$PKG" 2>&1)" "$NEW_DEB_VER"
is "dpkg -L of the new package lists everest.so, everest.control and every sql/everest--*.sql of the tree" \
   "$(listed | tr '\n' ' ')" "$(expected "$NEW_SRC" | tr '\n' ' ')"
is "the package's files are root's and writable by no one else" "$(loose_files)" ""
pg_ctl_do restart
is "the server restarts on the new library" "$?" "0"
is "ALTER EXTENSION everest UPDATE" "$(pg_q -c 'ALTER EXTENSION everest UPDATE' >/dev/null && echo done)" "done"
is "extversion is the new control file's default_version" \
   "$(pg_q -c "SELECT extversion FROM pg_extension WHERE extname = 'everest'")" "$NEW_VER"
is "the old events are still readable" "$(pg_q -c "SELECT count(*) FROM everest.read_all_forward(0, 100)")" "3"
is "a new append works" "$(pg_q -c "SELECT last_version FROM everest.append_event('acct-1', 'Withdrawn', '{\"amount\": 1}')")" "1"
is "acct-1 reads back both its events" \
   "$(pg_q -c "SELECT string_agg(type, ',' ORDER BY version) FROM everest.read_stream_forward('acct-1')")" "Deposited,Withdrawn"

# c) removal
is "DROP EXTENSION everest" "$(pg_q -c 'DROP EXTENSION everest' && echo done)" "done"
pg_ctl_do stop -m fast
is "the server stops" "$?" "0"
inchroot "$R" apt-get purge -y -qq "$PKG" >"$WORK/apt-purge.log" 2>&1
is "apt-get purge $PKG" "$?" "0"
# purged: dpkg no longer knows the package at all (dpkg-query fails), or knows it as not-installed
is "the package is gone" "$(inchroot "$R" dpkg-query -W -f '${db:Status-Status}' "$PKG" 2>/dev/null ||
  echo not-installed)" "not-installed"
is "no everest file left in lib/ or extension/" "$(ext_files)" ""
is "the package's doc directory is gone" "$([ -e "$R/usr/share/doc/$PKG" ] && echo present)" ""

# The teardown, checked: no mount of this run is left on the host.
cleanup_root=$(readlink -f "$R")
kill_in "$cleanup_root"
unmount_all
is "no mount left under the work folder" "$(mounts_under "$WORK")" ""
echo "# deb.sh took $((SECONDS - started)) s"
finish
