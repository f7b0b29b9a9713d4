#!/usr/bin/env bash
# deb.sh: build the Debian packages postgresql-15-apiscale and
# apiscale-pooler into build/deb/, then check them with lintian.
#
# The tree is copied to build/deb/apiscale-VERSION first (the files git
# knows, committed or not), so that dpkg-buildpackage, which writes its
# results next to the source directory, writes them into build/deb/ and
# leaves the working tree as it was.  Exits non-zero if the build fails or
# lintian reports an error.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/deps.sh" deb

version=$(dpkg-parsechangelog -l "$top/debian/changelog" -SVersion)
out=$top/build/deb
src=$out/apiscale-$version
rm -rf "$out"
mkdir -p "$src"
if git -C "$top" rev-parse --git-dir >/dev/null 2>&1; then
	(cd "$top" && git ls-files -z --cached --others --exclude-standard |
		while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
		tar --null -T - -cf -) | tar -C "$src" -xf -
else
	tar -C "$top" --exclude=./build -cf - . | tar -C "$src" -xf -
fi

echo "== dpkg-buildpackage (log: $out/build.log)"
if ! (cd "$src" && dpkg-buildpackage -us -uc -b) >"$out/build.log" 2>&1; then
	tail -n 60 "$out/build.log"
	echo "deb.sh: the build failed" >&2
	exit 1
fi
ls -1 "$out"/*.deb

echo "== lintian"
changes=$(ls "$out"/apiscale_*.changes)
# --fail-on error: warnings are printed, errors fail the build
if ! lintian --fail-on error --info "$changes" | tee "$out/lintian.log"; then
	echo "deb.sh: lintian reports errors" >&2
	exit 1
fi
echo "lintian: $(grep -c '^E:' "$out/lintian.log" || true) errors," \
	"$(grep -c '^W:' "$out/lintian.log" || true) warnings"
