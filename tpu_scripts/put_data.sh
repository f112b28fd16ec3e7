#!/usr/bin/env bash
# Put the data directory (Seahorse TSVs + articles.jsonl, OpenAssistant trees) and the converted
# mT5 checkpoint on every worker at the same path (or use a shared filesystem such as a gcsfuse
# mount and skip this).
#   tpu_scripts/put_data.sh NAME ZONE LOCAL_DATA_DIR LOCAL_CHECKPOINT_DIR
set -euo pipefail
NAME=${1:?name}; ZONE=${2:?zone}; DATA=${3:?data dir}; CKPT=${4:?converted mT5 checkpoint}
tar -C "$(dirname "$DATA")" -czf /tmp/xlalign_data.tgz "$(basename "$DATA")"
tar -C "$(dirname "$CKPT")" -czf /tmp/xlalign_ckpt.tgz "$(basename "$CKPT")"
gcloud compute tpus tpu-vm scp /tmp/xlalign_data.tgz /tmp/xlalign_ckpt.tgz "$NAME":~/ \
  --zone="$ZONE" --worker=all
gcloud compute tpus tpu-vm ssh "$NAME" --zone="$ZONE" --worker=all --command='
  mkdir -p ~/data && tar -C ~/data -xzf ~/xlalign_data.tgz && tar -C ~/data -xzf ~/xlalign_ckpt.tgz'
