"""The `xlalign` command. Each subcommand lives in its own module with `add_arguments(parser)` and
`run(args)`; only the chosen one is imported, so `xlalign --help` stays fast. A command module may
name the modules it runs on in `IMPORTS`: they are imported once its flags are parsed (`xlalign
COMMAND --help` then answers without jax or TensorFlow), before TensorFlow is kept off the GPUs.

Usage: xlalign COMMAND [flags]     (xlalign COMMAND --help for its flags)
"""
import argparse
import importlib
import os
import re
import sys

from xlalign_jax import host_devices, huge_pages
from xlalign_jax.errors import UserError

# name -> (module, one-line help)
COMMANDS = {
    "demo": ("xlalign_jax.demo_cli",
             "the main job: the whole cross-lingual grid on the synthetic world"),
    "run": ("xlalign_jax.run_cli", "run an experiment gin file as resumable stages"),
    "train": ("xlalign_jax.trainers.train_cli",
              "one training run (SFT, RM or PPO, chosen by the run gin file)"),
    "convert": ("xlalign_jax.convert_cli", "import a T5X or Hugging Face mT5 checkpoint"),
    "score": ("xlalign_jax.score_cli", "teacher-forced log-likelihood of targets given inputs"),
    "rm-eval": ("xlalign_jax.rm_eval_cli",
                "reward-model accuracy per task, with baselines and CIs"),
    "generate": ("xlalign_jax.generate_cli",
                 "sample (or greedy-decode) a policy's outputs for prompts"),
    "bon": ("xlalign_jax.bon_cli", "best-of-n reranking of policy samples by a reward model"),
    "rm-probe": ("xlalign_jax.synthetic.rm_probe_cli",
                 "which mistakes a reward model notices (synthetic world)"),
    "synth": ("xlalign_jax.synthetic.cli",
              "write the synthetic multilingual world (the embedded default data)"),
    "compare": ("xlalign_jax.compare_cli", "finished grids side by side (other seeds, languages)"),
    "inspect": ("xlalign_jax.inspect_cli", "write a task's examples as JSON lines of text"),
    "gem-articles": ("xlalign_jax.data.gem_articles",
                     "build seahorse/articles.jsonl from GEM (TFDS)"),
}


def _usage() -> str:
  lines = ["usage: xlalign COMMAND [flags]", "", "commands:"]
  width = max(map(len, COMMANDS))
  lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
  return "\n".join(lines)


# Library warnings that say nothing actionable to a user of this CLI.
_QUIET = ("Metadata file does not exist",  # orbax, reading one item of a step directory
          "Using an uncached FunctionDataset")  # seqio; our order is deterministic and resumable


def _quiet_library_logs() -> None:
  import logging
  logging.getLogger("absl").addFilter(
      lambda record: not str(record.msg).startswith(_QUIET))


def enable_compilation_cache() -> None:
  """Persist compiled XLA programs across stages and runs: the stages of a grid share shapes
  (SFT/RM/PPO per language), so all but the first compile of each shape are cache hits.
  The directory: $XLALIGN_JAX_CACHE (empty: no cache), else JAX's own setting
  ($JAX_COMPILATION_CACHE_DIR), else ~/.cache/xlalign_jax/jax."""
  import jax
  cache = os.environ.get("XLALIGN_JAX_CACHE")
  if cache is None:
    cache = jax.config.jax_compilation_cache_dir or os.path.join(
        os.path.expanduser("~"), ".cache", "xlalign_jax", "jax")
  if cache:
    jax.config.update("jax_compilation_cache_dir", cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def _keep_tensorflow_on_the_host() -> None:
  """tf.data (seqio's input pipeline) runs on the host; TensorFlow built with GPU support would
  otherwise claim the GPU memory that JAX needs (T5X guards against it the same way)."""
  os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")  # for a TensorFlow imported later
  tf = sys.modules.get("tensorflow")
  if tf is not None:
    try:
      tf.config.set_visible_devices([], "GPU")
    except RuntimeError:  # its devices are initialised already; the growth setting still holds
      pass


def _one_line(exc: BaseException) -> str:
  # gin appends "In call to configurable ..." to exceptions raised inside configurables.
  text = re.sub(r"\s*In call to configurable.*$", "", str(exc), flags=re.S)
  return " ".join(text.split()) or type(exc).__name__


def main(argv=None) -> int:
  if argv is None:  # the command itself (not a call from Python): before anything allocates
    huge_pages.reexec_if_wanted(["-m", "xlalign_jax.cli", *sys.argv[1:]])
  argv = list(sys.argv[1:] if argv is None else argv)
  if not argv or argv[0] in ("-h", "--help"):
    print(_usage())
    return 0
  name = argv[0]
  if name not in COMMANDS:
    print(f"xlalign: error: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
    return 2
  try:
    host_devices.configure()  # before anything imports jax
  except ValueError as exc:
    print(f"xlalign {name}: error: {exc}", file=sys.stderr)
    return 2
  _quiet_library_logs()
  module = importlib.import_module(COMMANDS[name][0])
  parser = argparse.ArgumentParser(prog=f"xlalign {name}", description=COMMANDS[name][1])
  module.add_arguments(parser)
  args, extra = parser.parse_known_args(argv[1:])
  # Gin-configured commands and those with --mesh (gin_utils.add_mesh_arguments) take --gin. flags
  if extra and not (getattr(module, "ACCEPTS_GIN_FLAGS", False) or hasattr(args, "mesh")):
    parser.error(f"unrecognized arguments: {' '.join(extra)}")
  args.extra = extra
  # After the flags, so that `--help` does not wait for jax and TensorFlow to import.
  enable_compilation_cache()
  for heavy in getattr(module, "IMPORTS", ()):
    importlib.import_module(heavy)
  _keep_tensorflow_on_the_host()
  try:
    module.run(args)
    if isinstance(getattr(args, "output", None), str) and os.path.exists(args.output):
      from xlalign_jax import provenance
      provenance.write_command_record(args.output, name, argv[1:], args)
  except (UserError, FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError,
          PermissionError) as exc:  # the last five: a path the user gave that cannot be used
    print(f"xlalign {name}: error: {_one_line(exc)}", file=sys.stderr)
    return 2
  except KeyboardInterrupt:
    print(f"xlalign {name}: interrupted", file=sys.stderr)
    return 130
  return 0


if __name__ == "__main__":
  sys.exit(main())
