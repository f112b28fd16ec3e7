#!/usr/bin/env bash
# Copy this checkout to every worker of the TPU VM and install it with the TPU extra.
#   tpu_scripts/setup.sh NAME ZONE
set -euo pipefail
NAME=${1:?name}; ZONE=${2:?zone}
REPO=$(cd "$(dirname "$0")/.." && pwd)
tar -C "$REPO" --exclude=.venv --exclude=workdir -czf /tmp/xlalign_jax.tgz .
gcloud compute tpus tpu-vm scp /tmp/xlalign_jax.tgz "$NAME":~/ --zone="$ZONE" --worker=all
gcloud compute tpus tpu-vm ssh "$NAME" --zone="$ZONE" --worker=all --command='
  set -e; mkdir -p ~/xlalign_jax && tar -C ~/xlalign_jax -xzf ~/xlalign_jax.tgz
  python3 -m venv ~/venv && . ~/venv/bin/activate && pip install -q -e "~/xlalign_jax[tpu]"'
