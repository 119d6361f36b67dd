#!/usr/bin/env bash
# Fetch and unpack the pinned Debian kernel source package into the cache.
# The .deb comes through a throw-away apt configuration (its own sources list
# and list directory), so the machine's apt sources never name a suite newer
# than bookworm; the mirror is the one the machine already uses.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The whole script is one function, read before it runs, and the line that
# calls it exits (bash reads a line whole before running it), so editing
# this file during a long build cannot derail the running copy.
main() {
	# A tree of the user's own (KSRC) is used where it is.
	[ -n "$KSRC" ] && exit 0
	[ -f "$KERNEL_SRC/.memlab-unpacked" ] && exit 0
	# One fetch at a time: make test builds two kernels at once, and a
	# second fetch would unpack over the first.
	mkdir -p "$MEMLAB_CACHE"
	exec 8>"$MEMLAB_CACHE/.lock-fetch"
	flock 8
	[ -f "$KERNEL_SRC/.memlab-unpacked" ] && exit 0

	deb_dir=$MEMLAB_CACHE/deb
	deb=$deb_dir/${KERNEL_PKG}_${KERNEL_PKG_VERSION}_all.deb
	mkdir -p "$deb_dir"

	if [ ! -f "$deb" ]; then
		mirror=$(bash "$MEMLAB_ROOT/scripts/setup-toolchain.sh" --print-mirror)
		tmp=$(mktemp -d)
		trap 'rm -rf "$tmp"' EXIT
		mkdir -p "$tmp/lists/partial" "$tmp/archives/partial"
		cat >"$tmp/sources.list" <<-SRC
	deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $KERNEL_PKG_SUITE main
	SRC
		aptopts=(-o "Dir::Etc::SourceList=$tmp/sources.list" -o "Dir::Etc::SourceParts=-"
			-o "Dir::State::Lists=$tmp/lists" -o "Dir::Cache=$tmp" -o "APT::Get::List-Cleanup=0"
			-o "Debug::NoLocking=1")
		run_with_progress "apt-get update ($KERNEL_PKG_SUITE, throw-away config)" "$MEMLAB_CACHE/apt-kernel-update.log" \
			apt-get "${aptopts[@]}" update
		say "downloading $KERNEL_PKG=$KERNEL_PKG_VERSION (about 160 MB)"
		(cd "$tmp" && apt-get "${aptopts[@]}" download "$KERNEL_PKG=$KERNEL_PKG_VERSION" >"$MEMLAB_CACHE/apt-kernel-download.log" 2>&1) ||
			die "download of $KERNEL_PKG=$KERNEL_PKG_VERSION failed (see $MEMLAB_CACHE/apt-kernel-download.log); the pinned version may have left $KERNEL_PKG_SUITE"
		mv "$tmp"/"${KERNEL_PKG}"_*.deb "$deb.part"
		mv "$deb.part" "$deb"
	fi

	if [ -n "$KERNEL_PKG_SHA256" ]; then
		echo "$KERNEL_PKG_SHA256  $deb" | sha256sum --quiet -c - ||
			{ rm -f "$deb"; die "sha256 mismatch for $deb (expected $KERNEL_PKG_SHA256); removed it"; }
	else
		die "no pinned sha256 in $KERNEL_PKG_SHA256_FILE; $deb has $(sha256sum "$deb" | cut -d' ' -f1)"
	fi

	say "unpacking $KERNEL_PKG into $KERNEL_SRC"
	rm -rf "$KERNEL_SRC" "$KERNEL_SRC.tmp" "$KERNEL_SRC.deb"
	mkdir -p "$KERNEL_SRC.tmp" "$KERNEL_SRC.deb"
	dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$KERNEL_SRC.deb" ./usr/src/
	tarball=$(ls "$KERNEL_SRC.deb"/usr/src/linux-source-*.tar.*)
	run_with_progress "tar -x $(basename "$tarball")" "$MEMLAB_CACHE/unpack.log" \
		tar -xf "$tarball" -C "$KERNEL_SRC.tmp" --strip-components=1
	rm -rf "$KERNEL_SRC.deb"
	mv "$KERNEL_SRC.tmp" "$KERNEL_SRC"
	touch "$KERNEL_SRC/.memlab-unpacked"
}
main "$@"; exit
