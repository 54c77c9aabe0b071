#!/bin/bash
# Runs a command from a container image's file system the way the container
# would run it, without starting a container (this sandbox cannot: crun may
# not set rlimits): in a mount namespace of its own, chrooted into the
# mounted image, as the image's user, in its working directory, with only
# the image's environment plus the given variables, and a host directory
# mounted at the image's volume. The process keeps this script's PID (every
# step execs the next), so the caller can signal and wait for it.
#
#   run_in_image.sh ROOT VOLUME_DIR VOLUME_TARGET USER WORKDIR ENV_FILE CMD...
#
# ENV_FILE holds NAME=VALUE lines (the image's Env, then any overrides).
# Must run as root (mount, chroot).
set -euo pipefail

if [ $# -lt 7 ]; then
  echo "usage: run_in_image.sh ROOT VOLUME_DIR VOLUME_TARGET USER WORKDIR ENV_FILE CMD..." >&2
  exit 2
fi

if [ -z "${PLANTD_IN_OWN_MOUNT_NAMESPACE:-}" ]; then
  # The mounts below vanish with the namespace when the command exits.
  PLANTD_IN_OWN_MOUNT_NAMESPACE=1 exec unshare --mount --propagation private -- "$0" "$@"
fi

root=$1 volume_dir=$2 volume_target=$3 user=$4 workdir=$5 env_file=$6
shift 6

mount --rbind /dev "$root/dev"
mount --rbind /proc "$root/proc"
mount --bind "$volume_dir" "$root$volume_target"
mapfile -t environment < "$env_file"
exec chroot --userspec="$user" "$root" /usr/bin/env -i -C "$workdir" "${environment[@]}" "$@"
