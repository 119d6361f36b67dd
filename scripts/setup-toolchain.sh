#!/usr/bin/env bash
# Install everything memlab needs on a Debian 12 (bookworm) machine:
# apt packages (qemu-system-x86 from bookworm-backports), rustup components,
# bindgen-cli. Idempotent and quiet when everything is already there.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

APT_PKGS=(clang-19 lld-19 llvm-19 libclang-19-dev flex bison bc libelf-dev
	libssl-dev cpio busybox-static xz-utils zstd ca-certificates fonts-dejavu-core)
BPO_PKGS=(qemu-system-x86)

SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
# In a background job (make test's kernel builds) a password prompt would
# stop the job and leave it holding the set-up lock below: there, sudo
# fails instead, and the foreground's own set-up asks later.
[ -z "$SUDO" ] || [ "${MEMLAB_BACKGROUND:-0}" != 1 ] || SUDO="sudo -n"

missing_pkgs() {
	local p
	for p in "$@"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || echo "$p"
	done
}

# The machine's own Debian mirror, read from its apt sources so that no
# registry host is written into this repository.
debian_mirror() {
	local uri
	uri=$(grep -hE '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null |
		grep -v security | grep -oE 'https?://[^ ]+/debian/?' | head -n 1 || true)
	[ -n "$uri" ] || die "cannot find the machine's Debian mirror in /etc/apt/sources.list*"
	echo "${uri%/}"
}

ensure_backports() {
	local f=/etc/apt/sources.list.d/memlab-bookworm-backports.sources
	grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/ && return 0
	say "adding bookworm-backports (for qemu-system-x86 10.x, matching qemu-utils)"
	$SUDO tee "$f" >/dev/null <<SRC
Types: deb
URIs: $(debian_mirror)
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
	NEED_UPDATE=1
}

if [ "${1:-}" = --print-mirror ]; then
	debian_mirror
	exit 0
fi
# --rustc RELEASE (build-kernel.sh distro): also rustup's toolchain RELEASE,
# the rustc Debian built its kernel with, with rust-src and clippy; and
# pahole (dwarves), without which Debian's config loses DEBUG_INFO_BTF and
# with it options that change structures (SCHED_CLASS_EXT: task_struct).
RUSTC_RELEASE=
if [ "${1:-}" = --rustc ]; then
	RUSTC_RELEASE=${2:?--rustc takes a rustc release}
	APT_PKGS+=(dwarves)
fi

# One set-up at a time (fd 7, held until this script ends): make test runs
# several of the rig's scripts at once (its background job and kernel
# builds), and apt, rustup and cargo install refuse or misbehave when two
# install at the same time.
mkdir -p "$MEMLAB_CACHE"
exec 7>"$MEMLAB_CACHE/.lock-setup"
flock 7

NEED_UPDATE=0
ensure_backports
mapfile -t miss < <(missing_pkgs "${APT_PKGS[@]}")
mapfile -t miss_bpo < <(missing_pkgs "${BPO_PKGS[@]}")
if [ "${#miss[@]}" -gt 0 ] || [ "${#miss_bpo[@]}" -gt 0 ] || [ "$NEED_UPDATE" = 1 ]; then
	if [ "${#miss[@]}" -gt 0 ] || [ "${#miss_bpo[@]}" -gt 0 ]; then
		say "installing apt packages: ${miss[*]} ${miss_bpo[*]}"
		run_with_progress "apt-get update" "$MEMLAB_CACHE/apt-update.log" $SUDO apt-get update
		export DEBIAN_FRONTEND=noninteractive
		if [ "${#miss[@]}" -gt 0 ]; then
			run_with_progress "apt-get install" "$MEMLAB_CACHE/apt-install.log" \
				$SUDO apt-get install -y --no-install-recommends "${miss[@]}"
		fi
		if [ "${#miss_bpo[@]}" -gt 0 ]; then
			run_with_progress "apt-get install (backports)" "$MEMLAB_CACHE/apt-install-bpo.log" \
				$SUDO apt-get install -y --no-install-recommends -t bookworm-backports "${miss_bpo[@]}"
		fi
	fi
fi

command -v rustup >/dev/null || die "rustup not found: memlab needs the machine's rustup toolchain"
installed=$(rustup component list --installed 2>/dev/null)
if ! grep -q '^rust-src' <<<"$installed"; then
	say "rustup component add rust-src"
	rustup component add rust-src >&2
fi
if ! grep -q 'x86_64-unknown-linux-musl' <<<"$installed"; then
	# memlabctl runs in a busybox initramfs with no libc: link it statically.
	say "rustup target add x86_64-unknown-linux-musl"
	rustup target add x86_64-unknown-linux-musl >&2
fi
for c in rustfmt clippy; do
	grep -q "^$c" <<<"$installed" || { say "rustup component add $c"; rustup component add "$c" >&2; }
done

if ! bindgen --version 2>/dev/null | grep -qF "$BINDGEN_VERSION"; then
	run_with_progress "cargo install bindgen-cli@$BINDGEN_VERSION" "$MEMLAB_CACHE/bindgen-install.log" \
		cargo install --locked --quiet bindgen-cli --version "$BINDGEN_VERSION"
fi

if [ -n "$RUSTC_RELEASE" ]; then
	for c in rust-src clippy; do
		rustup component list --toolchain "$RUSTC_RELEASE" --installed 2>/dev/null | grep -q "^$c" ||
			run_with_progress "rustup: toolchain $RUSTC_RELEASE, $c" "$MEMLAB_CACHE/rustup-$RUSTC_RELEASE.log" \
				rustup toolchain install "$RUSTC_RELEASE" --profile minimal --component "$c"
	done
fi
