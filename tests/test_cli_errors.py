"""Bad input to the CLI: one line naming the culprit on stderr, exit status 2, no traceback."""
import json

import pytest

from xlalign_jax import checkpoints, cli, errors

SMOKE = "--gin_file=gin_configs/experiments/smoke_sft.gin"


def _error(capsys, argv):
  code = cli.main(argv)
  err = capsys.readouterr().err.strip().splitlines()
  assert code == 2
  assert len(err) == 1 and "Traceback" not in err[0], err
  return err[0]


@pytest.mark.parametrize("flags,expected", [
    (["--gin.NoSuchThing.x=1"], "No configurable matching 'NoSuchThing'"),
    (["--gin.LoopConfig.bogus=1"], "doesn't have a parameter named 'bogus'"),
    (["--gin.MODEL_PARALLEL=3"], "model=3 does not fit 8 device(s)"),
    (["--gin.BATCH_SIZE=6"], "batch size 6 is not divisible by the 4 data-parallel shards"),
    (["--gin.INITIAL_CHECKPOINT_PATH=/nonexistent/ckpt"],
     "checkpoint not found: /nonexistent/ckpt"),
    (["--gin.MIXTURE_OR_TASK_NAME=no.such.task"], "unknown seqio task or mixture 'no.such.task'"),
    (["--gin.OptimizerConfig.name=sgd"], "unknown optimizer 'sgd'"),
    (["--gin.BATCH_SIZE=abc"], "LoopConfig.batch_size must be an int, got 'abc' (a str)"),
])
def test_train_bad_config(capsys, tmp_path, flags, expected):
  line = _error(capsys, ["train", SMOKE, f"--gin.MODEL_DIR={tmp_path}", *flags])
  assert expected in line


@pytest.mark.parametrize("flag,expected", [
    ("langs=en,es", "ExperimentConfig.langs must be a tuple of str, got 'en,es' (a str)"),
    ("rm_lr=abc", "ExperimentConfig.rm_lr must be a float, got 'abc' (a str)"),
    ("rm_steps=2.5", "ExperimentConfig.rm_steps must be an int, got 2.5 (a float)"),
    ("ppo_pairs=('en','es')", "ExperimentConfig.ppo_pairs must be a tuple of (str, str) pairs"),
])
def test_run_refuses_a_value_of_the_wrong_type_before_any_stage(capsys, tmp_path, flag, expected):
  workdir = tmp_path / "grid"
  line = _error(capsys, ["run", "experiments/demo.gin", f"--gin.ExperimentConfig.workdir={workdir}",
                         f"--gin.ExperimentConfig.{flag}"])
  assert expected in line
  assert not workdir.exists()


def test_train_missing_required_macro_and_file(capsys):
  assert _error(capsys, ["train", SMOKE]).endswith(
      "gin config: macro MODEL_DIR is required: set it with --gin.MODEL_DIR=... (each run file's "
      "header lists its required macros)")
  assert "gin file not found: missing.gin" in _error(capsys, ["train", "--gin_file=missing.gin"])


def test_initial_checkpoint_that_does_not_fit_the_model(capsys, tmp_path, small_checkpoint):
  line = _error(capsys, ["train", SMOKE, f"--gin.MODEL_DIR={tmp_path}",
                         f"--gin.INITIAL_CHECKPOINT_PATH={small_checkpoint}"])
  assert "has shape (16,) but the model expects (128,)" in line


def test_score_bad_inputs(capsys, tmp_path, small_checkpoint, shared_data):
  spm = str(shared_data / "sentencepiece/t5_test_sentencepiece.model")
  good = tmp_path / "in.jsonl"
  good.write_text(json.dumps({"inputs": "a", "targets": "b"}) + "\n")
  base = ["score", "--checkpoint", str(small_checkpoint), "--vocab", spm,
          "--output", str(tmp_path / "o.jsonl")]
  assert "input file not found" in _error(capsys, base + ["--input", str(tmp_path / "nope")])
  bad = tmp_path / "bad.jsonl"
  bad.write_text('{"inputs": "a", "targets": "b"}\n{not json\n')
  assert f"{bad}:2: not JSON" in _error(capsys, base + ["--input", str(bad)])
  bad.write_text('{"inputs": "a"}\n')
  assert "missing string field(s) ['targets']" in _error(capsys, base + ["--input", str(bad)])
  assert "no checkpoint in" in _error(capsys, ["score", "--checkpoint", str(tmp_path), "--vocab",
                                               spm, "--input", str(good), "--output", "x"])
  assert "sentencepiece model not found" in _error(
      capsys, ["score", "--checkpoint", str(small_checkpoint), "--vocab", "nope.model",
               "--input", str(good), "--output", "x"])


def test_a_reward_model_where_a_policy_is_needed(capsys, tmp_path, small_rm_checkpoint,
                                                shared_data):
  good = tmp_path / "in.jsonl"
  good.write_text(json.dumps({"inputs": "a", "targets": "b"}) + "\n")
  line = _error(capsys, ["score", "--checkpoint", str(small_rm_checkpoint), "--vocab",
                         str(shared_data / "sentencepiece/t5_test_sentencepiece.model"),
                         "--input", str(good), "--output", str(tmp_path / "o.jsonl")])
  assert line.endswith("is a reward or value model (decoder/score_head, no LM head); a policy "
                       "(SFT or PPO) checkpoint is needed here")


def test_rm_probe_bad_inputs(capsys, tmp_path, small_checkpoint):
  base = ["rm-probe", "--checkpoint", str(small_checkpoint), "--lang", "es",
          "--output", str(tmp_path / "probe.json")]
  assert "world.json not found" in _error(capsys, base + ["--data_dir", str(tmp_path)])
  assert "--articles must be at least 1" in _error(
      capsys, base + ["--data_dir", str(tmp_path), "--articles", "0"])


def test_an_experiment_stage_dir_resolves_to_its_run(tmp_path, small_checkpoint):
  stage = tmp_path / "stages" / "rm_es"
  stage.mkdir(parents=True)
  with pytest.raises(errors.UserError, match="no checkpoint in"):
    checkpoints.resolve(str(stage))
  (stage / "model").symlink_to(small_checkpoint, target_is_directory=True)
  assert checkpoints.resolve(str(stage)) == checkpoints.resolve(str(stage / "model"))


@pytest.mark.parametrize("argv", [
    ["generate", "--checkpoint", "c", "--task", "t", "--output", "o", "--batch_size", "0"],
    ["bon", "--policy", "p", "--rm", "r", "--task", "t", "--output", "o", "--max_input_length", "0"],
    ["score", "--checkpoint", "c", "--vocab", "v", "--input", "i", "--output", "o",
     "--batch_size", "-2"],
    ["rm-eval", "--checkpoint", "c", "--task", "t", "--output", "o", "--batch_size", "x"],
])
def test_counts_and_sizes_below_one_are_refused_by_the_flag_parser(capsys, argv):
  """They failed deep inside a run with a traceback (`range() arg 3 must not be zero`, or in JAX)."""
  with pytest.raises(SystemExit) as exit_info:
    cli.main(argv)
  flag = argv[-2]
  assert exit_info.value.code == 2
  assert capsys.readouterr().err.strip().splitlines()[-1] == (
      f"xlalign {argv[0]}: error: argument {flag}: must be a positive integer, got {argv[-1]!r}")


@pytest.mark.parametrize("exc", [PermissionError(13, "Permission denied", "/data/out.json"),
                                 FileExistsError(17, "File exists", "/data/out")])
def test_a_path_that_cannot_be_used_is_one_line(capsys, monkeypatch, tmp_path, exc):
  """Root on this machine passes every permission check, so the command raises it itself."""
  from xlalign_jax import compare_cli

  def refuse(args):
    raise exc
  monkeypatch.setattr(compare_cli, "run", refuse)
  line = _error(capsys, ["compare", str(tmp_path), "--output", str(tmp_path / "o")])
  assert line == f"xlalign compare: error: {exc}"


def test_compilation_cache_directory_precedence(monkeypatch, tmp_path):
  """XLALIGN_JAX_CACHE first (an empty one: no cache), then JAX's own setting
  (JAX_COMPILATION_CACHE_DIR), then ~/.cache/xlalign_jax/jax."""
  import jax
  before = jax.config.jax_compilation_cache_dir

  def chosen(ours, jaxs):
    if ours is None:
      monkeypatch.delenv("XLALIGN_JAX_CACHE", raising=False)
    else:
      monkeypatch.setenv("XLALIGN_JAX_CACHE", ours)
    jax.config.update("jax_compilation_cache_dir", jaxs)
    cli.enable_compilation_cache()
    return jax.config.jax_compilation_cache_dir

  monkeypatch.setenv("HOME", str(tmp_path))
  try:  # nothing compiles meanwhile, so nothing is written to these directories
    assert chosen(str(tmp_path / "ours"), str(tmp_path / "jax")) == str(tmp_path / "ours")
    assert chosen(None, str(tmp_path / "jax")) == str(tmp_path / "jax")
    assert chosen(None, None) == str(tmp_path / ".cache" / "xlalign_jax" / "jax")
    assert chosen("", None) is None
  finally:
    jax.config.update("jax_compilation_cache_dir", before)
