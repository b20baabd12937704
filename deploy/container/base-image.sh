#!/usr/bin/env bash
# A stand-in for the python:3.11-slim-bookworm image, for machines that reach Debian's package
# archive but no image registry (make container-test). Debian bookworm's Python is 3.11, as in
# the official image; the Dockerfile uses only what both have (python3, python3 -m venv, pip).
# The host's locally added CA certificates are copied in, so pip inside reaches PyPI through the
# same proxy as the host. Usage: deploy/container/base-image.sh [tag]  (needs root, debootstrap)
set -euo pipefail
tag="${1:-python:3.11-slim-bookworm}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "$tag already present"
  exit 0
fi
root="$(mktemp -d /var/tmp/pp-base.XXXXXX)"
chmod 755 "$root"  # mktemp's 0700 would become the image's "/": no other user could reach anything
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates,curl \
  bookworm "$root" "$mirror" >/dev/null
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
  chroot "$root" update-ca-certificates >/dev/null
fi
# What the official image sets: `python` on PATH, UTF-8, no .pyc noise.
ln -sf /usr/bin/python3 "$root/usr/local/bin/python"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | docker import \
  --change 'ENV LANG=C.UTF-8' \
  --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["python3"]' - "$tag" >/dev/null
echo "built $tag"
