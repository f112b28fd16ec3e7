"""Config values of the wrong type fail at construction, as one line naming the field."""
import dataclasses
from typing import Any, Mapping, Optional, Tuple

import pytest

from xlalign_jax import config_types, partitioning, training
from xlalign_jax.config import ModelConfig
from xlalign_jax.errors import UserError


@dataclasses.dataclass(frozen=True)
class Example:
  langs: Tuple[str, ...] = ("en",)
  pairs: Tuple[Tuple[str, str], ...] = ()
  lr: float = 1.0
  steps: int = 1
  limit: Optional[int] = None
  lengths: Mapping[str, int] = dataclasses.field(default_factory=dict)
  flag: bool = False
  extra: Tuple[Tuple[str, Any], ...] = ()


@pytest.mark.parametrize("values,message", [
    ({"langs": "en,es"}, "Example.langs must be a tuple of str, got 'en,es' (a str); a tuple is "
                         "written ('a', 'b'), one of one item ('a',)"),
    ({"pairs": ("en", "es")}, "Example.pairs must be a tuple of (str, str) pairs, got ('en', 'es') "
                              "(a tuple)"),
    ({"pairs": (("en", "es", "ru"),)}, "Example.pairs must be a tuple of (str, str) pairs"),
    ({"lr": "abc"}, "Example.lr must be a float, got 'abc' (a str)"),
    ({"lr": True}, "Example.lr must be a float, got True (a bool)"),
    ({"steps": 2.5}, "Example.steps must be an int, got 2.5 (a float)"),
    ({"limit": "10"}, "Example.limit must be an int or None, got '10' (a str)"),
    ({"lengths": {"inputs": 1.5}}, "Example.lengths must be a dict of str -> int"),
    ({"flag": 1}, "Example.flag must be a bool, got 1 (an int)"),
])
def test_a_wrong_type_names_the_field_and_what_it_wants(values, message):
  with pytest.raises(UserError) as exc:
    config_types.check_field_types(Example(**values))
  assert str(exc.value).startswith(message)


@pytest.mark.parametrize("values", [
    {}, {"langs": ["en", "es"]}, {"lr": 1}, {"limit": 3}, {"limit": None},
    {"lengths": {"inputs": 8}}, {"extra": (("model", "m"), ("timeout", 3.0))},
    {"pairs": (("en", "es"),)},
])
def test_values_of_the_annotated_types_pass(values):
  config_types.check_field_types(Example(**values))


def test_the_package_configs_check_themselves():
  with pytest.raises(UserError, match=r"^ModelConfig.emb_dim must be an int, got '128'"):
    ModelConfig(emb_dim="128")
  with pytest.raises(UserError, match=r"^OptimizerConfig.learning_rate must be a float"):
    training.OptimizerConfig(learning_rate="1e-3")
  with pytest.raises(UserError, match=r"^MeshConfig.data must be an int"):
    partitioning.MeshConfig(data=None)


def test_lists_given_for_tuples_are_stored_as_tuples():
  example = Example(langs=["en", "es"], pairs=[["en", "es"], ("es", "es")],
                    extra=[("model", ["a", "b"])])
  config_types.check_field_types(example)
  assert example.langs == ("en", "es")
  assert example.pairs == (("en", "es"), ("es", "es"))
  # The Any inside a pair is left as it was written.
  assert example.extra == (("model", ["a", "b"]),)
  assert type(example.extra[0]) is tuple
  # A package config built from gin's list syntax equals (and hashes as) the tuple-written one.
  assert (ModelConfig(mlp_activations=["gelu", "linear"]) ==
          ModelConfig(mlp_activations=("gelu", "linear")))
  assert hash(ModelConfig(mlp_activations=["gelu", "linear"])) == hash(ModelConfig())


def test_tuples_already_written_as_tuples_are_left_as_the_same_objects():
  langs = ("en", "es")
  example = Example(langs=langs)
  config_types.check_field_types(example)
  assert example.langs is langs
