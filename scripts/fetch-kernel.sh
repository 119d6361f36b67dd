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
	if [ "${1:-}" = --distro ]; then
		fetch_distro
		return
	fi
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
		say "downloading $KERNEL_PKG=$KERNEL_PKG_VERSION (about 160 MB)"
		rm -rf "$deb_dir/.fetch"
		apt_fetch "$KERNEL_PKG_SUITE" "$deb_dir/.fetch" "$KERNEL_PKG=$KERNEL_PKG_VERSION"
		mv "$deb_dir/.fetch/${KERNEL_PKG}"_*.deb "$deb"
		rm -rf "$deb_dir/.fetch"
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
# apt_fetch SUITE DIR PKG=VERSION...: downloads the packages' .debs into DIR
# through a throw-away apt configuration naming only SUITE, on the mirror
# the machine's own sources use.
apt_fetch() {
	local suite=$1 dir=$2 mirror tmp f
	shift 2
	mirror=$(bash "$MEMLAB_ROOT/scripts/setup-toolchain.sh" --print-mirror)
	tmp=$(mktemp -d)
	# run_with_progress and die exit from inside: the throw-away
	# configuration goes with the script however it ends (its path now: a
	# set -e exit leaves the local unset by the time the trap runs).
	trap "rm -rf $(printf '%q' "$tmp")" EXIT
	mkdir -p "$tmp/lists/partial" "$tmp/archives/partial" "$tmp/debs"
	cat >"$tmp/sources.list" <<-SRC
	deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $suite main
	SRC
	local aptopts=(-o "Dir::Etc::SourceList=$tmp/sources.list" -o "Dir::Etc::SourceParts=-"
		-o "Dir::State::Lists=$tmp/lists" -o "Dir::Cache=$tmp" -o "APT::Get::List-Cleanup=0"
		-o "Debug::NoLocking=1")
	run_with_progress "apt-get update ($suite, throw-away config)" "$MEMLAB_CACHE/apt-kernel-update.log" \
		apt-get "${aptopts[@]}" update
	(cd "$tmp/debs" && apt-get "${aptopts[@]}" download "$@" >"$MEMLAB_CACHE/apt-kernel-download.log" 2>&1) ||
		{ die "download of $* failed (see $MEMLAB_CACHE/apt-kernel-download.log); the pinned version may have left $suite"; }
	mkdir -p "$dir"
	for f in "$tmp"/debs/*.deb; do
		mv "$f" "$dir/.$(basename "$f").part"
		mv "$dir/.$(basename "$f").part" "$dir/$(basename "$f")"
	done
	rm -rf "$tmp"
	trap - EXIT
}

# fetch_distro: Debian's prebuilt kernel for the distro flavour (the
# packages and sha256s in $DISTRO_DEBS), unpacked into $DISTRO_SRC: the
# image (vmlinuz), its .config and Module.symvers, and its modules.
fetch_distro() {
	[ -f "$DISTRO_SRC/.memlab-unpacked" ] && return 0
	mkdir -p "$MEMLAB_CACHE"
	exec 8>"$MEMLAB_CACHE/.lock-fetch-distro"
	flock 8
	[ -f "$DISTRO_SRC/.memlab-unpacked" ] && return 0
	local deb_dir=$MEMLAB_CACHE/deb/distro pkg ver sha want=() deb
	while read -r pkg ver sha; do
		[ -f "$deb_dir/${pkg}_${ver}_amd64.deb" ] || want+=("$pkg=$ver")
	done < <(grep -v '^#' "$DISTRO_DEBS")
	if [ "${#want[@]}" -gt 0 ]; then
		say "downloading Debian's kernel image, headers and modules (${want[*]}; about 125 MB)"
		apt_fetch "$KERNEL_PKG_SUITE" "$deb_dir" "${want[@]}"
	fi
	rm -rf "$DISTRO_SRC.tmp"
	mkdir -p "$DISTRO_SRC.tmp"
	while read -r pkg ver sha; do
		deb=$deb_dir/${pkg}_${ver}_amd64.deb
		echo "$sha  $deb" | sha256sum --quiet -c - ||
			{ rm -f "$deb"; die "sha256 mismatch for $deb (expected $sha, pinned in $DISTRO_DEBS); removed it"; }
		dpkg-deb -x "$deb" "$DISTRO_SRC.tmp"
	done < <(grep -v '^#' "$DISTRO_DEBS")
	local img=$DISTRO_SRC.tmp/usr/lib/modules/$DISTRO_RELEASE hdr=$DISTRO_SRC.tmp/usr/src/linux-headers-$DISTRO_RELEASE
	[ -f "$img/vmlinuz" ] && [ -f "$hdr/.config" ] && [ -f "$hdr/Module.symvers" ] && [ -d "$img/kernel" ] ||
		die "Debian's packages in $deb_dir lack vmlinuz, .config, Module.symvers or the modules of $DISTRO_RELEASE"
	mkdir -p "$DISTRO_SRC.tmp/image"
	mv "$img/vmlinuz" "$img/kernel" "$hdr/.config" "$hdr/Module.symvers" "$DISTRO_SRC.tmp/image/"
	rm -rf "$DISTRO_SRC.tmp/usr" "$DISTRO_SRC"
	mv "$DISTRO_SRC.tmp/image" "$DISTRO_SRC"
	rm -rf "$DISTRO_SRC.tmp"
	touch "$DISTRO_SRC/.memlab-unpacked"
}
main "$@"; exit
