"""`xlalign score --checkpoint DIR --vocab SPM_MODEL --input IN.jsonl --output OUT.jsonl`:
teacher-forced log-likelihoods (what and how: `score`). The flags live here so that `--help`
answers without importing jax."""
import json
import pathlib

from xlalign_jax import gin_utils

IMPORTS = ("xlalign_jax.score",)


def add_arguments(parser):
  parser.add_argument("--checkpoint", required=True,
                      help="checkpoint dir (MODEL_DIR, root or step)")
  parser.add_argument("--vocab", required=True, help="sentencepiece model file")
  parser.add_argument("--input", required=True, help='JSONL with "inputs" and "targets"')
  parser.add_argument("--output", required=True, help="JSONL written with an added \"loglik\"")
  parser.add_argument("--batch_size", type=gin_utils.positive_int, default=32)
  gin_utils.add_mesh_arguments(parser)


def run(args):
  from xlalign_jax import fileio, score  # pylint: disable=g-import-not-at-top  (IMPORTS)

  mesh_config = gin_utils.mesh_config_from_args(args)
  rows = score.read_jsonl(args.input, ("inputs", "targets"))
  vocab = score.load_vocabulary(args.vocab)
  scorer = score.Scorer(args.checkpoint, args.batch_size, mesh_config=mesh_config)
  logliks = scorer.score_texts(vocab, [r["inputs"] for r in rows], [r["targets"] for r in rows],
                               progress=True)
  out = pathlib.Path(args.output)
  with fileio.open_for_write(out) as f:
    for row, ll in zip(rows, logliks):
      f.write(json.dumps(dict(row, loglik=float(ll)), ensure_ascii=False) + "\n")
  print(f"scored {len(rows)} examples -> {out} (mesh {dict(scorer.mesh.shape)})")
