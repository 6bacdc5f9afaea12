#!/usr/bin/env bash
# Assembles the runtime file tree of the container image from a build directory: the
# three binaries in /usr/local/bin, every shared library `ldd` lists for them (symlinks
# recreated as they are on this machine, so /lib64/ld-linux-x86-64.so.2 resolves), the
# MariaDB client's auth plugins (loaded with dlopen, so ldd cannot see them: MySQL 8's
# default caching_sha2_password is one) with their libraries, /etc/passwd and /etc/group
# naming the non-root user, the CA bundle for an https:// JWKS, and /tmp. No shell, no
# package manager, nothing else.
#
# deploy/Dockerfile's runtime stage is `FROM scratch` plus exactly this tree, and
# tests/deploy/rootfs_test.sh runs the binaries from it (chroot, uid 10001, empty
# environment): the same script, so the image and the test cannot diverge.
#
# Usage: scripts/assemble-rootfs.sh BUILD_DIR OUT_DIR   (OUT_DIR absent or empty)
set -euo pipefail

readonly binaries=(balanced balance-gateway balancectl)
readonly uid=10001 gid=10001 user=balanced
# Debian's OpenSSL looks for the system CAs under OPENSSLDIR (/usr/lib/ssl): cert.pem
# there is a symlink to the bundle, recreated as it is.
readonly ca_bundle=/etc/ssl/certs/ca-certificates.crt
readonly openssl_ca_link=/usr/lib/ssl/cert.pem

die() { echo "assemble-rootfs: $*" >&2; exit 1; }

[[ $# -eq 2 ]] || die "usage: $0 BUILD_DIR OUT_DIR"
build=$(cd "$1" 2>/dev/null && pwd) || die "no build directory $1"
out=$2
if [[ -e "$out" ]]; then
  [[ -d "$out" && -z "$(ls -A "$out")" ]] || die "$out exists and is not an empty directory"
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
for binary in "${binaries[@]}"; do
  [[ -x "$build/$binary" ]] || die "$build/$binary is missing (cmake --build $build --target ${binaries[*]})"
done

# copy_path ABSOLUTE_PATH: puts the file at that path into $out under the same path.
# Every symlink met on the way (a directory like /lib -> usr/lib, or the file itself) is
# recreated as a symlink and its target copied too, so the tree resolves exactly as here.
copy_path() {
  local path
  path=$(realpath -sm "$1")
  local prefix="" rest="${path#/}" part target
  while [[ -n "$rest" ]]; do
    part=${rest%%/*}
    if [[ "$rest" == */* ]]; then rest=${rest#*/}; else rest=""; fi
    prefix+="/$part"
    if [[ -L "$prefix" ]]; then
      target=$(readlink "$prefix")
      if [[ ! -L "$out$prefix" ]]; then
        [[ ! -e "$out$prefix" ]] || die "$prefix is a symlink here but not in $out"
        mkdir -p "$out$(dirname "$prefix")"
        ln -s "$target" "$out$prefix"
      fi
      [[ "$target" == /* ]] || target="$(dirname "$prefix")/$target"
      copy_path "$target${rest:+/$rest}"
      return
    fi
  done
  [[ -f "$path" ]] || die "$path is not a regular file"
  if [[ ! -e "$out$path" ]]; then
    mkdir -p "$out$(dirname "$path")"
    cp --preserve=mode "$path" "$out$path"
  fi
}

# libraries_of FILE: the absolute paths ldd resolves for FILE (the loader included); a
# library ldd cannot find fails the whole assembly.
libraries_of() {
  local listing
  listing=$(ldd "$1") || die "ldd $1 failed"
  if grep -q 'not found' <<< "$listing"; then
    die "ldd $1: $(grep 'not found' <<< "$listing" | tr -s ' \t' ' ')"
  fi
  awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' <<< "$listing"
}

objects=()
mkdir -p "$out/usr/local/bin"
for binary in "${binaries[@]}"; do
  install -m 0755 "$build/$binary" "$out/usr/local/bin/$binary"
  objects+=("$build/$binary")
done

# The MariaDB client finds its auth plugins in a directory compiled into it.
# grep reads all of ldd's output: -q would stop early, ldd would die of SIGPIPE, and under
# pipefail the test would fail at random.
if ldd "$build/balanced" | grep 'libmariadb\.so' > /dev/null; then
  plugin_dir=$(mariadb_config --plugindir 2>/dev/null) || die "mariadb_config (libmariadb-dev) not found: cannot locate the client's auth plugins"
  [[ -d "$plugin_dir" ]] || die "MariaDB plugin directory $plugin_dir does not exist"
  shopt -s nullglob
  plugins=("$plugin_dir"/*.so)
  shopt -u nullglob
  [[ ${#plugins[@]} -gt 0 ]] || die "no plugins in $plugin_dir"
  for plugin in "${plugins[@]}"; do
    copy_path "$plugin"
    objects+=("$plugin")
  done
fi

mapfile -t libraries < <(for object in "${objects[@]}"; do libraries_of "$object"; done | sort -u)
[[ ${#libraries[@]} -gt 0 ]] || die "ldd found no libraries"
for library in "${libraries[@]}"; do copy_path "$library"; done

mkdir -p "$out/etc"
printf 'root:x:0:0:root:/root:/usr/sbin/nologin\n%s:x:%d:%d:%s:/nonexistent:/usr/sbin/nologin\n' \
  "$user" "$uid" "$gid" "$user" > "$out/etc/passwd"
printf 'root:x:0:\n%s:x:%d:\n' "$user" "$gid" > "$out/etc/group"
# glibc's files and dns lookups are built into libc.so.6 (2.34 and later); the kubelet
# (or the engine) provides /etc/hosts and /etc/resolv.conf.
printf 'passwd: files\ngroup: files\nhosts: files dns\n' > "$out/etc/nsswitch.conf"
chmod 0644 "$out/etc/passwd" "$out/etc/group" "$out/etc/nsswitch.conf"

[[ -f "$ca_bundle" ]] || die "$ca_bundle missing (apt-get install ca-certificates)"
copy_path "$ca_bundle"
[[ -L "$openssl_ca_link" ]] || die "$openssl_ca_link is not the symlink Debian's OpenSSL reads (ca-certificates)"
copy_path "$openssl_ca_link"

mkdir -p "$out/tmp"
chmod 1777 "$out/tmp"

files=$(find "$out" -type f | wc -l)
bytes=$(du -sb "$out" | cut -f1)
echo "assemble-rootfs: $out: $files files, $((bytes / 1024 / 1024)) MiB (${#libraries[@]} libraries)"
