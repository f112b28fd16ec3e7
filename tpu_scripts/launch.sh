#!/usr/bin/env bash
# Launch an experiment on every worker at once (multi-host: jax.distributed.initialize() on each).
#   tpu_scripts/launch.sh NAME ZONE EXPERIMENT.gin [--gin.KEY=VALUE ...]
# e.g. launch.sh xlalign us-central2-b gin_configs/experiments/seahorse_xl.gin \
#        --gin.DATA_DIR="'/home/$USER/data/seahorse_data'" --gin.MT5_CHECKPOINT="'/home/$USER/data/mt5_xl'"
# WORKDIR must be on a filesystem every worker sees (e.g. a gcsfuse mount).
set -euo pipefail
NAME=${1:?name}; ZONE=${2:?zone}; EXPERIMENT=${3:?experiment gin}; shift 3
ARGS=$(printf ' %q' "$@")
gcloud compute tpus tpu-vm ssh "$NAME" --zone="$ZONE" --worker=all --command="
  . ~/venv/bin/activate && cd ~/xlalign_jax &&
  nohup xlalign run $EXPERIMENT --gin.MULTI_HOST=True $ARGS > ~/xlalign_run.log 2>&1 &"
echo "launched; follow with: gcloud compute tpus tpu-vm ssh $NAME --zone=$ZONE --worker=0 --command='tail -f ~/xlalign_run.log'"
