#!/bin/sh
# Installs this package's ctdbd as the system's ctdbd (bare metal, Debian's ctdb.service
# unchanged): <sbindir>/ctdbd becomes a symlink to <package>/dist/ctdbd. A symlink, not a copy:
# the executable finds its JavaScript next to its resolved path, so the package directory must
# stay where it is. Debian's own /usr/sbin/ctdbd is kept aside with dpkg-divert (as
# ctdbd.distrib) and comes back with --uninstall.
#
#   scripts/install-system.sh [--sbindir DIR] [--uninstall]
set -eu

sbindir=/usr/sbin
action=install
while [ $# -gt 0 ]; do
	case "$1" in
	--sbindir) [ $# -ge 2 ] || { echo "$0: --sbindir needs a directory" >&2; exit 2; }
		sbindir=$2; shift 2 ;;
	--uninstall) action=uninstall; shift ;;
	-h|--help) sed -n '2,9s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) echo "$0: unknown argument $1 (try --help)" >&2; exit 2 ;;
	esac
done

package=$(cd "$(dirname "$0")/.." && pwd)
binary="$package/dist/ctdbd"
target="$sbindir/ctdbd"

# Only files dpkg installed can (and need to) be diverted.
owned_by_dpkg() {
	command -v dpkg-query >/dev/null 2>&1 && dpkg-query -S "$1" >/dev/null 2>&1
}

if [ "$action" = uninstall ]; then
	if [ -L "$target" ] && [ "$(readlink "$target")" = "$binary" ]; then
		rm -f "$target"
	fi
	if command -v dpkg-divert >/dev/null 2>&1 && dpkg-divert --list "$target" | grep -q .; then
		dpkg-divert --local --rename --remove "$target"
	fi
	echo "removed $target -> $binary"
	exit 0
fi

if [ ! -x "$binary" ]; then
	echo "$0: $binary is missing: run 'npm run build' and 'node dist/scripts/build-sea.js' first" >&2
	exit 1
fi

if [ -e "$target" ] && ! [ -L "$target" ]; then
	if owned_by_dpkg "$target"; then
		dpkg-divert --local --rename --add "$target"
	else
		echo "$0: $target exists and is not ours; move it away first" >&2
		exit 1
	fi
fi
mkdir -p "$sbindir"
ln -sfn "$binary" "$target"
echo "installed $target -> $binary"
