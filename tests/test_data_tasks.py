"""Every registered xlalign_v1 task and mixture yields a batch through its feature converter.

Data: a small synthetic world (`xlalign_jax.synthetic.write_world`), written in the real formats.
"""
import numpy as np
import pytest
import seqio

import xlalign_tasks
from xlalign_jax.feature_converters import converter_for, task_feature_names
from xlalign_jax.synthetic import write_world
from tiny_world import use_data_dir
from xlalign_tasks.seahorse import LANGS

SPM_SIZE = 500

NAMES = sorted(n for n in list(seqio.TaskRegistry.names()) + list(seqio.MixtureRegistry.names())
               if n.startswith("xlalign_v1."))
LENGTHS = {"inputs": 128, "targets": 64, "chosen": 64, "rejected": 64}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
  root = tmp_path_factory.mktemp("synthetic_world") / "data"
  write_world(str(root), list(LANGS), seed=0, articles_per_lang=20, trees_per_lang=40,
              pretrain_docs_per_lang=20, spm_vocab_size=SPM_SIZE)
  return root


@pytest.fixture
def data_dir(world, monkeypatch):  # pylint: disable=redefined-outer-name
  return use_data_dir(world, monkeypatch)


def test_all_tasks_registered():
  for dataset in ("seahorse", "oasst"):
    for lang in LANGS:
      for kind in ("sft", "rm", "prompts"):
        assert f"xlalign_v1.{dataset}.{lang}.{kind}" in NAMES
    assert f"xlalign_v1.{dataset}.all.sft" in NAMES
    assert f"xlalign_v1.{dataset}.en_es.rm" in NAMES


@pytest.mark.parametrize("name", NAMES)
def test_batch_from_every_task(name, data_dir):
  del data_dir
  # The shapes are asserted below; seqio's per-example length assertions would double the time.
  converter = converter_for(name, apply_length_check=False)
  lengths = {k: LENGTHS[k] for k in task_feature_names(name)}
  ds = seqio.get_dataset(name, lengths, dataset_split="train", shuffle=False, num_epochs=1,
                         feature_converter=converter, batch_size=2)
  batch = next(ds.as_numpy_iterator())
  model_lengths = converter.get_model_feature_lengths(lengths)
  for key, spec in converter.MODEL_FEATURES.items():
    expected = (2, model_lengths[key]) if spec.rank else (2,)
    assert batch[key].shape == expected, key
  assert (batch["encoder_input_tokens"][:, 0] != 0).all()  # every example has an input
  if "label" in batch:
    assert set(batch["label"].tolist()) <= {0.0, 1.0}
  if "chosen_decoder_target_tokens" in batch:
    differ = batch["chosen_decoder_target_tokens"] != batch["rejected_decoder_target_tokens"]
    assert differ.any(axis=1).all()


def test_vocabulary_is_shared_and_lazy(data_dir):
  vocab = seqio.get_mixture_or_task("xlalign_v1.oasst.en.rm").output_features["chosen"].vocabulary
  assert vocab is seqio.get_mixture_or_task("xlalign_v1.seahorse.vi.sft").output_features[
      "targets"].vocabulary
  assert vocab.eos_id == 1 and vocab.vocab_size == SPM_SIZE
  np.testing.assert_array_equal(vocab.encode_tf("Pelhi di 38").numpy(), vocab.encode("Pelhi di 38"))


def test_training_and_capped_validation_draw_from_the_whole_split(data_dir):
  """Rows appended after a file (extra Seahorse files, a language after another) reach the first
  training batches and the capped validation sample; seqio's 1000-row buffer alone keeps them
  out."""
  del data_dir
  from xlalign_jax import data_pipeline
  from xlalign_tasks import base
  name = "xlalign_test.ordered_rows"
  if name not in seqio.TaskRegistry.names():
    base.register(name, lambda split: [
        {"inputs": "a", "targets": "b", "label": float(i >= 2500), "lang": "en", "id": str(i)}
        for i in range(3000)], base.POINTWISE_RM_FEATURES, ("train", "validation"))
  converter = converter_for("xlalign_v1.seahorse.en.rm")
  lengths = {"inputs": 8, "targets": 8}
  batches = data_pipeline.train_batches(name, lengths, 32, seed=0, start_batch=0,
                                        feature_converter=converter)
  first = np.concatenate([next(batches)["label"] for _ in range(10)])  # 320 of 3000 rows
  assert 0.05 < first.mean() < 0.35  # 1/6 of the split has label 1
  sample = data_pipeline.eval_batches(name, lengths, 32, converter, max_examples=256)
  labels = np.concatenate([b["label"] for b in sample])
  assert len(labels) == 256 and 0.05 < labels.mean() < 0.35
  again = data_pipeline.eval_batches(name, lengths, 32, converter, max_examples=256)
  assert all((a["label"] == b["label"]).all() for a, b in zip(sample, again))  # a fixed sample


@pytest.mark.parametrize("length", [40, 12])
def test_long_dialog_inputs_keep_the_instruction_and_the_latest_turns(data_dir, length):
  """seqio would keep an input's first tokens and cut the question being answered; dialog tasks
  keep the instruction and the end (the end alone when there is no room for both)."""
  del data_dir
  from xlalign_jax.synthetic import formats
  from xlalign_tasks import oasst, settings
  vocab = settings.VOCABULARY
  head = vocab.encode(formats.DIALOG_INSTRUCTION.format(language=formats.language_name("es")))
  room = length - 1  # EOS comes last
  expected = []
  for example in oasst.sft_examples("es", "train"):
    ids = vocab.encode(example["inputs"])
    assert ids[:len(head)] == head
    if len(ids) > room:
      ids = head + ids[len(ids) - room + len(head):] if len(head) < room else ids[-room:]
    expected.append(ids + [1])
  assert sum(len(ids) == length for ids in expected) > len(expected) // 2  # most are cut
  ds = seqio.get_mixture_or_task("xlalign_v1.oasst.es.sft").get_dataset(
      {"inputs": length, "targets": 64}, split="train", shuffle=False)
  got = [ex["inputs"].tolist() for ex in ds.as_numpy_iterator()]
  assert got == expected


def test_examples_carry_the_group_they_share_an_input_with(data_dir):
  """Confidence intervals resample whole groups: the rated summaries of one article, the threads
  and pairs of one message tree. An example without one (pretraining) is a group of its own."""
  del data_dir
  from xlalign_jax import data_pipeline
  from xlalign_jax.data import oasst as oasst_data
  from xlalign_tasks import settings

  def examples(name, split="train"):
    return list(data_pipeline.text_examples(seqio.get_mixture_or_task(name), split))

  rated = examples("xlalign_v1.seahorse.es.rm")
  assert all(e["group"] == e["id"].split("@")[0] for e in rated)
  assert len({e["group"] for e in rated}) < len(rated)  # several rated summaries per article
  prompts = examples("xlalign_v1.seahorse.es.prompts")
  assert [e["group"] for e in prompts] == [e["id"] for e in prompts]  # one prompt per article
  tree_of = {t.message_id: t.tree_id
             for t in oasst_data.load(f"{settings.data_dir()}/oasst")}
  for kind in ("sft", "rm", "prompts"):
    dialog = examples(f"xlalign_v1.oasst.es.{kind}")
    assert dialog and all(e["group"] == tree_of[e["id"].split(":")[0]] for e in dialog)
  pretrain = examples("xlalign_v1.pretrain.es")
  assert pretrain and all(e["group"] == e["id"] for e in pretrain)


def test_an_example_of_another_projects_task_is_a_group_of_its_own():
  """Tasks from elsewhere may carry no group or id; none of them may share a placeholder group,
  which would make the cluster bootstrap resample all of them as one."""
  from xlalign_jax.data_pipeline import example_group
  examples = [{"group": "tree-1", "id": "a"}, {"id": "b"}, {"id": None}, {}, {"group": None}]
  assert [example_group(e, i) for i, e in enumerate(examples)] == ["tree-1", "b", "#2", "#3",
                                                                   "#4"]
