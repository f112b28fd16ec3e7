#!/usr/bin/env bash
# Create a TPU VM (single host or pod slice).
#   tpu_scripts/create_vm.sh NAME ZONE ACCELERATOR   e.g. create_vm.sh xlalign us-central2-b v4-32
set -euo pipefail
NAME=${1:?name}; ZONE=${2:?zone}; ACCEL=${3:-v4-8}
gcloud compute tpus tpu-vm create "$NAME" --zone="$ZONE" --accelerator-type="$ACCEL" \
  --version=tpu-ubuntu2204-base
