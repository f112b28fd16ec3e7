"""XLALIGN_CPU_DEVICES: the XLA_FLAGS the xlalign command sets before importing jax."""
import pytest

from xlalign_jax import host_devices

FLAG = "--xla_force_host_platform_device_count"


def test_default_leaves_xla_alone():
  assert host_devices.xla_flags({}) is None
  assert host_devices.xla_flags({"XLALIGN_CPU_DEVICES": "1"}) is None


def test_count_added_to_existing_flags_and_never_overrides_a_given_count():
  assert host_devices.xla_flags({"XLALIGN_CPU_DEVICES": "2"}) == f"{FLAG}=2"
  assert host_devices.xla_flags({"XLALIGN_CPU_DEVICES": "4", "XLA_FLAGS": "--xla_dump_to=/d"}) == (
      f"--xla_dump_to=/d {FLAG}=4")
  assert host_devices.xla_flags({"XLALIGN_CPU_DEVICES": "2", "XLA_FLAGS": f"{FLAG}=8"}) is None


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_bad_count_is_an_error(value):
  with pytest.raises(ValueError, match="XLALIGN_CPU_DEVICES must be a positive integer"):
    host_devices.xla_flags({"XLALIGN_CPU_DEVICES": value})


def test_cli_reports_a_bad_device_count_in_one_line(monkeypatch, capsys):
  from xlalign_jax import cli
  monkeypatch.setattr(host_devices, "_jax_imported", lambda: False)  # as in a fresh process
  monkeypatch.setenv("XLALIGN_CPU_DEVICES", "0")
  monkeypatch.delenv("XLA_FLAGS", raising=False)
  assert cli.main(["synth", "--help"]) == 2
  assert "XLALIGN_CPU_DEVICES must be a positive integer, got '0'" in capsys.readouterr().err


def test_cli_keeps_tensorflow_off_the_gpus_before_a_command_runs(monkeypatch, capsys):
  import os
  import sys
  import types
  from xlalign_jax import cli
  from xlalign_jax import experiment  # noqa: F401  (the demo's IMPORTS, with the real TensorFlow)
  calls = []

  def set_visible_devices(devices, kind):
    calls.append((devices, kind))
    raise RuntimeError("Visible devices cannot be modified after being initialized")
  monkeypatch.setitem(sys.modules, "tensorflow",
                      types.SimpleNamespace(config=types.SimpleNamespace(
                          set_visible_devices=set_visible_devices)))
  monkeypatch.delenv("TF_FORCE_GPU_ALLOW_GROWTH", raising=False)
  # The command runs (and stops at its bad input); TensorFlow's refusal is not an error.
  assert cli.main(["demo", "--langs", "en"]) == 2
  assert "--langs needs at least two languages" in capsys.readouterr().err
  assert calls == [([], "GPU")]
  assert os.environ["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"


# In a fresh interpreter: `--help` of the commands that name their heavy modules in IMPORTS imports
# neither jax nor TensorFlow (it took ~14 s), and the GPU guard runs once those are imported.
_FRESH_PROCESS = """
import sys
from xlalign_jax import cli
for command in (
    "demo", "run", "train", "inspect", "bon", "generate", "score", "rm-eval", "compare"):
  try:
    cli.main([command, "--help"])
  except SystemExit as exit_:
    assert exit_.code == 0, exit_.code
heavy = sorted(m for m in ("jax", "tensorflow", "seqio", "flax", "orbax") if m in sys.modules)
assert not heavy, heavy
guarded = []
cli._keep_tensorflow_on_the_host = lambda: guarded.append("tensorflow" in sys.modules)
assert cli.main(["run", "no_such_experiment.gin"]) == 2
assert guarded == [True], guarded
print("ok")
"""


def test_help_is_fast_and_tensorflow_imported_later_is_still_guarded():
  import subprocess
  import sys
  result = subprocess.run([sys.executable, "-c", _FRESH_PROCESS], capture_output=True, text=True,
                          timeout=300)
  assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-2000:]
