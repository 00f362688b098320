# The Debian package round trip's table (sourced by test/shell/deb.sh and test/pg17.sh): for
# each PostgreSQL major the package is tested on, the Debian release of deb.sh's chroot (the one
# whose postgresql-<major> is the distribution's own) and the previous release's commit, whose
# package is installed first and then upgraded to the current tree's.
#
#   major  release   previous release
#   15     bookworm  6a33cb3  (0.5.0; no debian/ of its own: today's is laid over it)
#   17     trixie    d160228  (0.6.0, the first release with PostgreSQL 17 support; today's
#                              debian/ replaces its own, as for 15)
#
# deb_table MAJOR: sets DEB_RELEASE and DEB_OLD_COMMIT for MAJOR; false for a major not listed.
deb_table() {
  case "$1" in
    15) DEB_RELEASE=bookworm DEB_OLD_COMMIT=6a33cb3 ;;
    17) DEB_RELEASE=trixie DEB_OLD_COMMIT=d160228 ;;
    *) DEB_RELEASE= DEB_OLD_COMMIT=; return 1 ;;
  esac
}
