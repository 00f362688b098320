#!/usr/bin/env bash
# The whole suite against PostgreSQL 17 on Debian 13 (trixie), in a chroot (make test-pg17).
#
#   test/pg17.sh              needs root (re-runs itself with sudo otherwise) and deb.debian.org
#   test/pg17.sh COMMAND...   the same root, mounts and copy, but runs COMMAND in the copy instead
#                             (e.g. test/pg17.sh bash -c 'make && make install' to iterate)
#
# The first run makes a minimal trixie root with debootstrap and keeps it in
# /var/cache/everest-trixie (EVEREST_TRIXIE_CACHE), so later runs reuse it and the packages
# test/run.sh installed there. Each run copies the files git knows of (tracked, and untracked
# ones that are not ignored: no build products) into the root, mounts /proc, /sys, a small /dev
# with its own /dev/pts, and /dev/shm, and runs `PG_MAJOR=17 ./test/run.sh test` inside as root, its clusters from port
# 58432 on so that they never meet the host's.
#
# The copy has no git history, which test/shell/deb.sh needs for the previous release's source:
# the host writes it as a tarball (git archive of test/shell/deb.bash's commit for 17) into the
# root and names it in EVEREST_DEB_OLD_SRC_TAR, with EVEREST_DEB_COMMIT the host's HEAD. deb.sh
# makes its own Debian 13 chroot inside the root (cached in the root's
# /var/cache/everest-deb-chroot). Whatever happens, every process left in the root or in a chroot
# inside it is stopped and every mount under the root is undone on the way out, a second
# interrupt included. The last line is run.sh's "N passed, N failed", and the exit status is
# run.sh's.
set -uo pipefail

if [ "$(id -u)" -ne 0 ]; then exec sudo "$0" "$@"; fi

cd "$(dirname "$0")/.."
SRC=$(pwd)
source "$SRC/test/shell/deb.bash"
deb_table 17 || { echo "pg17: test/shell/deb.bash has no entry for 17" >&2; exit 1; }
CACHE=${EVEREST_TRIXIE_CACHE:-/var/cache/everest-trixie}
ROOTFS=$CACHE/root
MIRROR=http://deb.debian.org/debian
PORT=${CLUSTER_FIRST_PORT:-58432}

mkdir -p "$CACHE"
# One run at a time per root: a second one waits.
exec 9>"$CACHE/lock"
flock 9

log() { printf '\n=== pg17: %s\n' "$*"; }

# --------------------------------------------------------------------------------------------
# The root: made once, set up again on every run (cheap, and repairs a half-configured root)
# --------------------------------------------------------------------------------------------
if [ ! -f "$ROOTFS/etc/debian_version" ]; then
  command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; } || exit 1
  log "making a Debian 13 root in $ROOTFS (debootstrap, a few minutes)"
  rm -rf "$ROOTFS.partial"
  debootstrap --variant=minbase trixie "$ROOTFS.partial" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 ||
    { tail -20 "$CACHE/debootstrap.log"; exit 1; }
  mv "$ROOTFS.partial" "$ROOTFS"
fi
cat >"$ROOTFS/etc/apt/sources.list" <<EOF
deb $MIRROR trixie main
deb $MIRROR trixie-updates main
deb http://deb.debian.org/debian-security trixie-security main
EOF
# No service may start inside the root while packages install (the host owns the machine's
# daemons and ports), and installing postgresql-17 must not make a 17/main cluster on port 5432.
printf '#!/bin/sh\nexit 101\n' >"$ROOTFS/usr/sbin/policy-rc.d"
chmod 755 "$ROOTFS/usr/sbin/policy-rc.d"
mkdir -p "$ROOTFS/etc/postgresql-common/createcluster.d"
echo 'create_main_cluster = false' >"$ROOTFS/etc/postgresql-common/createcluster.d/everest.conf"
cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf" 2>/dev/null
cp /etc/hosts "$ROOTFS/etc/hosts"
# A host whose HTTPS goes through a proxy with its own certificate authority tells Node.js so with
# NODE_EXTRA_CA_CERTS; the chroot gets the same file, or npm install (clients.sh) cannot reach
# the registry.
NODE_CA=()
if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -r "$NODE_EXTRA_CA_CERTS" ]; then
  mkdir -p "$ROOTFS/etc/ssl"
  cp "$NODE_EXTRA_CA_CERTS" "$ROOTFS/etc/ssl/everest-host-extra-ca.crt"
  NODE_CA=(NODE_EXTRA_CA_CERTS=/etc/ssl/everest-host-extra-ca.crt)
fi

# --------------------------------------------------------------------------------------------
# Mounts, and their undoing
# --------------------------------------------------------------------------------------------
# The processes whose root directory is the root or a chroot inside it (deb.sh's), and every
# mount under the root, deepest first (this script's, and those deb.sh made in its chroot).
root_pids() {
  local p r
  for p in /proc/[0-9]*; do
    r=$(readlink "$p/root" 2>/dev/null) || continue
    case "$r" in "$ROOTFS" | "$ROOTFS"/*) echo "${p#/proc/}" ;; esac
  done
}
root_mounts() { awk -v r="$ROOTFS" '$2 == r || index($2, r "/") == 1 { print $2 }' /proc/mounts | sort -r; }
cleanup() {
  trap '' INT TERM HUP   # a second interrupt must not cut the clean-up short
  local pids=() mounts=() m p i round alive
  # processes still running from the root (a cluster a failed suite left, pgbouncer, a
  # pg_autoctl, deb.sh and the server in its chroot): TERM, up to 10 s, then KILL, twice over
  for round in 1 2; do
    mapfile -t pids < <(root_pids)
    [ ${#pids[@]} -gt 0 ] || break
    kill "${pids[@]}" 2>/dev/null
    for i in 1 2 3 4 5 6 7 8 9 10; do
      alive=0
      for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
      [ $alive -eq 1 ] || break
      sleep 1
    done
    kill -9 "${pids[@]}" 2>/dev/null
    sleep 0.2
  done
  # every mount under the root, children before parents; a busy one lazily in the last round
  for round in 1 2 3; do
    mapfile -t mounts < <(root_mounts)
    [ ${#mounts[@]} -gt 0 ] || break
    for m in "${mounts[@]}"; do
      umount "$m" 2>/dev/null || { [ $round -eq 3 ] && umount -l "$m" 2>/dev/null; }
    done
  done
  mapfile -t mounts < <(root_mounts)
  if [ ${#mounts[@]} -gt 0 ]; then
    echo "pg17: could not unmount: ${mounts[*]}" >&2
  else
    # work folders deb.sh could not delete itself (killed): nothing is mounted under them now
    rm -rf "$ROOTFS"/var/tmp/everest-deb.*
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

mount_in() {   # mount_in TARGET mount-arguments...
  local target=$ROOTFS$1
  shift
  mkdir -p "$target"
  if mountpoint -q "$target"; then echo "pg17: $target is already mounted (another run?)" >&2; exit 1; fi
  mount "$@" "$target" || exit 1
}
mount_in /proc -t proc proc
mount_in /sys -t sysfs -o ro sysfs
mount_in /dev -t tmpfs -o mode=755,size=1m everest-dev
mknod -m 666 "$ROOTFS/dev/null" c 1 3
mknod -m 666 "$ROOTFS/dev/zero" c 1 5
mknod -m 666 "$ROOTFS/dev/full" c 1 7
mknod -m 666 "$ROOTFS/dev/random" c 1 8
mknod -m 666 "$ROOTFS/dev/urandom" c 1 9
mknod -m 666 "$ROOTFS/dev/tty" c 5 0
ln -s /proc/self/fd "$ROOTFS/dev/fd"
ln -s /proc/self/fd/0 "$ROOTFS/dev/stdin"
ln -s /proc/self/fd/1 "$ROOTFS/dev/stdout"
ln -s /proc/self/fd/2 "$ROOTFS/dev/stderr"
# a private pseudo-terminal instance (apt and dpkg want one for their logs)
mount_in /dev/pts -t devpts -o newinstance,ptmxmode=0666,mode=0620 everest-pts
ln -s pts/ptmx "$ROOTFS/dev/ptmx"
# PostgreSQL's dynamic shared memory (posix) lives in /dev/shm
mount_in /dev/shm -t tmpfs -o mode=1777,size=512m everest-shm

# --------------------------------------------------------------------------------------------
# The working tree, without build products
# --------------------------------------------------------------------------------------------
log "copying the working tree into the root"
rm -rf "$ROOTFS/work/everest"
mkdir -p "$ROOTFS/work/everest"
git -C "$SRC" ls-files -z --cached --others --exclude-standard |
  while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
  tar -C "$SRC" --null -T - -cf - | tar -C "$ROOTFS/work/everest" -xf - || exit 1
# test/shell/deb.sh's previous release, from the host's history (the copy has none). If the
# commit is missing here (a shallow clone), no tarball is written and deb.sh says so.
OLD_TAR=/work/everest-deb-old-src.tar
rm -f "$ROOTFS$OLD_TAR"
git -C "$SRC" archive -o "$ROOTFS$OLD_TAR" "$DEB_OLD_COMMIT" ||
  { rm -f "$ROOTFS$OLD_TAR"; echo "pg17: git archive $DEB_OLD_COMMIT failed (a shallow clone needs: git fetch --unshallow)" >&2; }
HEAD_COMMIT=$(git -C "$SRC" rev-parse --short HEAD)

if [ $# -eq 0 ]; then set -- ./test/run.sh test; fi
log "PG_MAJOR=17 $* in Debian $(cat "$ROOTFS/etc/debian_version")"
chroot "$ROOTFS" /usr/bin/env -i PATH=/usr/lib/postgresql/17/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  HOME=/root LANG=C.UTF-8 TERM=dumb PG_MAJOR=17 PG_CONFIG=/usr/lib/postgresql/17/bin/pg_config \
  CLUSTER_FIRST_PORT="$PORT" EVEREST_DEB_OLD_SRC_TAR="$OLD_TAR" EVEREST_DEB_COMMIT="$HEAD_COMMIT" \
  "${NODE_CA[@]}" /bin/sh -c 'cd /work/everest && exec "$@"' sh "$@" <&0 &
# waited for in the background, so that a TERM to this script (timeout, kill) runs the clean-up
# at once instead of after the suite
wait $!
