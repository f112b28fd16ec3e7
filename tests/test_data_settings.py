"""Where tasks find their data directory and vocabulary: Python, gin, environment, DATA_DIR/spm."""
import gin
import pytest

import xlalign_tasks
from xlalign_jax.errors import UserError
from xlalign_tasks import settings


@pytest.fixture(autouse=True)
def clean(monkeypatch):
  monkeypatch.setattr(settings, "_explicit", {})
  monkeypatch.delenv(settings.DATA_DIR_ENV, raising=False)
  monkeypatch.delenv(settings.VOCAB_ENV, raising=False)
  yield
  gin.clear_config()


def test_order_python_then_gin_then_environment(tmp_path, monkeypatch):
  for name in ("env", "gin", "py"):
    (tmp_path / name).mkdir()
  monkeypatch.setenv(settings.DATA_DIR_ENV, str(tmp_path / "env"))
  assert settings.data_dir() == str(tmp_path / "env")
  gin.parse_config(f"DATA_DIR = '{tmp_path / 'gin'}'\nxlalign_tasks.configure.data_dir = %DATA_DIR")
  assert settings.data_dir() == str(tmp_path / "gin")
  xlalign_tasks.configure(data_dir=tmp_path / "py")
  assert settings.data_dir() == str(tmp_path / "py")


def test_missing_settings_are_user_errors(tmp_path):
  with pytest.raises(UserError, match="no data directory"):
    settings.data_dir()
  xlalign_tasks.configure(data_dir=tmp_path)
  with pytest.raises(UserError, match="--vocab"):
    settings.vocab_path()
  xlalign_tasks.configure(vocab_path=tmp_path / "absent.model")
  with pytest.raises(UserError, match="absent.model not found"):
    settings.vocab_path()


def test_vocabulary_defaults_to_the_worlds_spm(tmp_path):
  (tmp_path / "spm").mkdir()
  (tmp_path / "spm" / "sentencepiece.model").write_bytes(b"")
  xlalign_tasks.configure(data_dir=tmp_path)
  assert settings.vocab_path() == f"{tmp_path}/spm/sentencepiece.model"


def test_strict_from_gin():
  assert not settings.strict()
  gin.parse_config("xlalign_tasks.configure.strict = True")
  assert settings.strict()
