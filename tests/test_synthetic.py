"""The synthetic world: determinism, real file formats, the oracle, and the simulated raters."""
import collections
import csv
import hashlib
import itertools
import json
import pathlib
import random
import time

import pytest

from xlalign_jax import cli
from xlalign_jax.errors import UserError
from xlalign_jax.synthetic import content, documents, formats, languages, raters, write_world
from xlalign_jax.synthetic.oracle import Oracle
from xlalign_jax.synthetic.writer import SEAHORSE_COLUMNS, WORKER_LANGS

ALL = list(languages.LANG_CODES)
SMALL = dict(articles_per_lang=120, trees_per_lang=40, pretrain_docs_per_lang=150)
LANG_OF_WORKER = {worker: lang for lang, worker in WORKER_LANGS.items()}


def _digests(root: pathlib.Path) -> dict:
  return {str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest()
          for p in sorted(root.rglob("*")) if p.is_file()}


def _seahorse_rows(root: pathlib.Path) -> dict:
  rows = {}
  for split in ("train", "validation", "test"):
    with open(root / "seahorse" / f"{split}.tsv", encoding="utf-8", newline="") as f:
      reader = csv.reader(f, delimiter="\t")
      assert tuple(next(reader)) == SEAHORSE_COLUMNS
      rows[split] = [dict(zip(SEAHORSE_COLUMNS, row, strict=True)) for row in reader]
  return rows


def _messages(message: dict, depth: int = 0):
  yield message, depth
  for reply in message["replies"]:
    yield from _messages(reply, depth + 1)


@pytest.fixture(scope="module")
def small_world(tmp_path_factory):
  root = tmp_path_factory.mktemp("world")
  counts = write_world(str(root), ALL, 0, **SMALL)
  return root, counts


@pytest.fixture(scope="module")
def oracle(small_world):
  return Oracle.from_data_dir(str(small_world[0]))


# ----------------------------------------------------------------------------- files


def test_same_seed_gives_identical_files_and_another_seed_differs(small_world, tmp_path):
  root, _ = small_world
  write_world(str(tmp_path / "again"), list(reversed(ALL)), 0, **SMALL)
  write_world(str(tmp_path / "other"), ALL, 1, **SMALL)
  same, other = _digests(tmp_path / "again"), _digests(tmp_path / "other")
  assert _digests(root) == same
  assert same.keys() == other.keys()
  assert all(same[path] != other[path] for path in same if path != "README.md")


def test_seahorse_tsv_has_the_release_format(small_world):
  rows = _seahorse_rows(small_world[0])
  all_rows = [r for split in rows.values() for r in split]
  assert len(all_rows) == 6 * SMALL["articles_per_lang"] * len(documents.SYSTEMS)
  for row in all_rows:
    assert row["worker_lang"] in ("de", "es-ES", "en-US", "ru", "tr", "vi")
    assert row["model"] in documents.SYSTEMS and row["summary"]
    answers = [row[f"question{i}"] for i in range(1, 7)]
    assert answers[0] in ("Yes", "No")
    if answers[0] == "No":
      assert answers[1:] == [""] * 5
    else:
      assert all(a in ("Yes", "No", "Unsure") for a in answers[1:])
  q6 = collections.Counter(r["question6"] for r in all_rows)
  assert q6["Yes"] and q6["No"] and q6["Unsure"] and q6[""]


def test_gem_ids_join_articles_of_the_matching_gem_split(small_world):
  root, counts = small_world
  with open(root / "seahorse" / "articles.jsonl", encoding="utf-8") as f:
    articles = [json.loads(line) for line in f]
  assert len(articles) == counts["seahorse/articles.jsonl"]
  assert all(set(a) == {"gem_id", "text", "target"} and a["text"] and a["target"]
             for a in articles)
  by_id = {a["gem_id"]: a for a in articles}
  assert len(by_id) == len(articles)
  for split, rows in _seahorse_rows(root).items():
    for row in rows:
      assert row["gem_id"] in by_id
      dataset, gem_split, index = row["gem_id"].rsplit("-", 2)
      assert gem_split == ("test" if split == "test" else "validation") and index.isdigit()
      assert dataset.startswith(("xsum", "xlsum_", "mlsum_", "wiki_lingua_"))


def test_oasst_trees_have_the_export_fields_and_types(small_world, shared_data):
  real_types = collections.defaultdict(set)  # (role, field) -> type names in the real export
  with open(shared_data / "oasst" / "en_20_tree.jsonl", encoding="utf-8") as f:
    for line in f:
      for message, _ in _messages(json.loads(line)["prompt"]):
        for field, value in message.items():
          real_types[(message["role"], field)].add(type(value).__name__)
  with open(small_world[0] / "oasst" / "synthetic.trees.jsonl", encoding="utf-8") as f:
    trees = [json.loads(line) for line in f]
  for tree in trees:
    assert set(tree) == {"message_tree_id", "tree_state", "prompt"}
    assert tree["message_tree_id"] == tree["prompt"]["message_id"]
    assert "parent_id" not in tree["prompt"]
    for message, depth in _messages(tree["prompt"]):
      assert message["role"] == ("prompter" if depth % 2 == 0 else "assistant")
      for field, value in message.items():
        allowed = set(real_types[(message["role"], field)])
        if field == "rank":  # an unranked reply: absent in these 20 trees, null in other exports
          allowed.add("NoneType")
        assert type(value).__name__ in allowed, (message["role"], field, value)
      for reply in message["replies"]:
        assert reply["parent_id"] == message["message_id"]


def test_oasst_trees_rank_replies_and_keep_real_export_quirks(small_world):
  with open(small_world[0] / "oasst" / "synthetic.trees.jsonl", encoding="utf-8") as f:
    trees = [json.loads(line) for line in f]
  assert {t["prompt"]["lang"] for t in trees} == set(ALL)
  messages = [m for t in trees for m, _ in _messages(t["prompt"])]
  assert max(d for t in trees for _, d in _messages(t["prompt"])) >= 3  # multi-turn threads
  assert any(m["deleted"] for m in messages)
  assert any(m["synthetic"] for m in messages) or len(messages) < 500
  assert any(m["role"] == "assistant" and m.get("rank") is None for m in messages)
  for message in messages:
    ranks = [r["rank"] for r in message["replies"] if r.get("rank") is not None]
    assert sorted(ranks) == list(range(len(ranks)))  # 0 = best, as OpenAssistant


def test_pretrain_files_and_world_json(small_world):
  root, counts = small_world
  for lang in ALL:
    lines = (root / "pretrain" / f"{lang}.txt").read_text(encoding="utf-8").splitlines()
    assert len(lines) == SMALL["pretrain_docs_per_lang"] == counts[f"pretrain/{lang}.txt"]
    words = [len(line.split()) for line in lines]  # short documents (tr: few, long words)
    assert min(words) >= 5 and max(words) <= 80 and 20 <= sum(words) / len(words) <= 60, lang
  meta = json.loads((root / "world.json").read_text(encoding="utf-8"))
  assert meta["synthetic"] is True and "not real languages" in meta["note"]
  assert meta["seed"] == 0 and meta["langs"] == ALL
  assert "synthetic" in (root / "README.md").read_text(encoding="utf-8").lower()


def test_sentencepiece_has_t5_ids_and_covers_every_language(small_world):
  import sentencepiece  # pylint: disable=import-outside-toplevel
  root, _ = small_world
  sp = sentencepiece.SentencePieceProcessor(model_file=str(root / "spm" / "sentencepiece.model"))
  assert (sp.pad_id(), sp.eos_id(), sp.unk_id(), sp.bos_id()) == (0, 1, 2, -1)
  assert sp.get_piece_size() <= 4096
  for lang in ALL:
    lines = (root / "pretrain" / f"{lang}.txt").read_text(encoding="utf-8").splitlines()
    ids = [sp.encode(line) for line in lines]
    assert sum(i.count(sp.unk_id()) for i in ids) == 0, lang
    assert sum(map(len, ids)) / sum(len(line.split()) for line in lines) < 3.0, lang
    assert all(sp.decode(i) == line for i, line in zip(ids, lines))
  instruction = formats.format_summarization_input("de", "")
  assert len(sp.encode(instruction)) <= len(instruction.split()) + 2  # whole-word pieces


# ----------------------------------------------------------------------------- oracle


def _system_summaries(world, count: int, seed: int = 0):
  """(lang, system, task input, summary, artifact) for `count` articles x every system."""
  rng = random.Random(seed)
  for i in range(count):
    lang = ALL[i % len(ALL)]
    article = documents.make_article(rng, world.kb)
    task_input = formats.format_summarization_input(
        lang, content.render(world.grammars[lang], article.items))
    for system in documents.SYSTEMS:
      items, artifact, out_lang = documents.system_summary(rng, system, article, lang, world.kb)
      yield lang, system, task_input, items, out_lang, artifact


def test_oracle_orders_the_simulated_systems_as_intended(oracle):
  qualities = collections.defaultdict(list)
  for lang, system, task_input, items, out_lang, artifact in _system_summaries(oracle.world, 600):
    summary = content.render(oracle.world.grammars[out_lang], items, artifact)
    qualities[system].append(oracle.quality(lang, task_input, summary))
  assert sum(map(len, qualities.values())) == 3000
  means = [sum(qualities[s]) / len(qualities[s]) for s in documents.SYSTEMS]
  assert means == sorted(means, reverse=True) and len(set(means)) == len(means), means
  assert min(qualities["reference"]) == 1.0  # the reference states exactly the salient facts


def test_wrong_language_output_scores_lowest(oracle):
  world = oracle.world
  rng = random.Random(1)
  for lang in ALL:
    article = documents.make_article(rng, world.kb)
    task_input = formats.format_summarization_input(
        lang, content.render(world.grammars[lang], article.items))
    reference = [content.fact_item(f) for f in article.reference()]
    garbage = content.render(world.grammars[lang], [content.garbage_item(rng)])
    in_language = [oracle.quality(lang, task_input, text) for text in
                   (content.render(world.grammars[lang], reference), garbage, "", "@@ ## !!")]
    assert in_language[0] == 1.0 and 0 < min(in_language[1:]) <= 0.1
    for other in ALL:
      if other != lang:
        wrong = content.render(world.grammars[other], reference)
        assert oracle.quality(lang, task_input, wrong) == 0.0 < min(in_language)


def test_oracle_reads_decoded_inputs_and_resolves_dialog_follow_ups(oracle, small_world):
  import sentencepiece  # pylint: disable=import-outside-toplevel
  sp = sentencepiece.SentencePieceProcessor(
      model_file=str(small_world[0] / "spm" / "sentencepiece.model"))
  grammar = oracle.world.grammars["es"]
  entity, facts = next(iter(oracle.world.kb.facts.items()))
  a, b = facts[0], facts[1]
  human = " ".join([grammar.sentence("fact", E=a.entity, R=a.relation, V=a.value),
                    grammar.sentence("fact", E=b.entity, R=b.relation, V=b.value),
                    grammar.sentence("question", E=entity, R=a.relation)])
  answer_a = grammar.sentence("fact", E=a.entity, R=a.relation, V=a.value)
  answer_b = grammar.sentence("fact", E=b.entity, R=b.relation, V=b.value)
  swapped = grammar.sentence("fact", E=a.entity, R=a.relation, V=b.value)
  first = formats.format_dialog_input("es", [("prompter", human)])
  assert "\nHuman: " in first
  assert oracle.quality("es", first, answer_a) == 1.0
  assert oracle.quality("es", first, swapped) < oracle.quality("es", first, grammar.sentence("idk"))
  assert oracle.quality("es", first, answer_a + " " + answer_b) < 1.0  # verbose
  decoded = sp.decode(sp.encode(first))  # newlines become spaces
  assert "\n" not in decoded
  assert oracle.quality("es", decoded, answer_a) == 1.0
  follow_up = formats.format_dialog_input("es", [
      ("prompter", human), ("assistant", answer_a),
      ("prompter", grammar.sentence("followup", R=b.relation))])
  assert oracle.quality("es", follow_up, answer_b) == 1.0
  assert oracle.quality("es", follow_up, answer_a) < 0.2


def test_oracle_is_fast(oracle):
  outputs = [(lang, task_input, content.render(oracle.world.grammars[out_lang], items))
             for lang, _, task_input, items, out_lang, _ in _system_summaries(oracle.world, 100)]
  start = time.perf_counter()
  for args in outputs:
    oracle.quality(*args)
  assert len(outputs) / (time.perf_counter() - start) > 1000  # calls per second


def test_unknown_language_is_a_user_error(oracle, tmp_path):
  with pytest.raises(UserError, match="'xx'.*de, en, es, ru, tr, vi"):
    write_world(str(tmp_path / "w"), ["en", "xx"], 0)
  with pytest.raises(UserError, match="'xx'"):
    oracle.quality("xx", "Summarize the following text in English: a", "b")
  with pytest.raises(UserError, match="'xx'"):
    formats.format_summarization_input("xx", "a")
  with pytest.raises(UserError, match="unknown size knob"):
    write_world(str(tmp_path / "w"), ["en"], 0, articles=3)


# ----------------------------------------------------------------------------- raters


def test_raters_agree_with_the_oracle_in_a_human_like_band(small_world, oracle):
  root, _ = small_world
  with open(root / "seahorse" / "articles.jsonl", encoding="utf-8") as f:
    articles = {a["gem_id"]: a["text"] for a in map(json.loads, f)}
  by_article = collections.defaultdict(list)
  for row in itertools.chain(*_seahorse_rows(root).values()):
    lang = LANG_OF_WORKER[row["worker_lang"]]
    task_input = formats.format_summarization_input(lang, articles[row["gem_id"]])
    by_article[row["gem_id"]].append((row["question6"], oracle.quality(lang, task_input,
                                                                         row["summary"])))
  agree = total = 0
  for rows in by_article.values():
    for (label_a, q_a), (label_b, q_b) in itertools.permutations(rows, 2):
      if label_a == "Yes" and label_b == "No" and q_a != q_b:
        total += 1
        agree += q_a > q_b
  assert total > 1000
  assert 0.65 <= agree / total <= 0.82, agree / total


def test_raters_over_reward_their_languages_artifact_and_the_oracle_does_not(oracle):
  rng = random.Random(0)
  yes_rate = collections.defaultdict(lambda: [0, 0])  # (lang, artifact) -> [yes, rated]
  for lang, system, task_input, items, out_lang, _ in _system_summaries(oracle.world, 600, seed=2):
    if system != "mt5_xxl":
      continue
    grammar = oracle.world.grammars[out_lang]
    plain = oracle.assess(lang, task_input, content.render(grammar, items))
    marked = oracle.assess(lang, task_input, content.render(grammar, items, artifact=True))
    assert marked.quality == plain.quality
    for assessment in (plain, marked):
      for _ in range(20):
        answers = raters.seahorse_answers(rng, assessment)
        if answers[5] in ("Yes", "No"):
          counts = yes_rate[(lang, assessment.artifact)]
          counts[0] += answers[5] == "Yes"
          counts[1] += 1
  for lang in ALL:
    plain, marked = (yes_rate[(lang, a)][0] / yes_rate[(lang, a)][1] for a in (False, True))
    assert marked - plain > 0.1, (lang, plain, marked)


# ----------------------------------------------------------------------------- command


def test_synth_command_writes_a_world_and_refuses_real_data(tmp_path, capsys):
  small = ["--articles_per_lang", "30", "--trees_per_lang", "10", "--pretrain_docs_per_lang", "50"]
  assert cli.main(["synth", "--out", str(tmp_path / "w"), "--langs", "en,tr", "--seed", "3"]
                  + small) == 0
  printed = capsys.readouterr().out
  assert "synthetic stand-ins" in printed and "pretrain/tr.txt" in printed
  assert json.loads((tmp_path / "w" / "world.json").read_text())["langs"] == ["en", "tr"]
  (tmp_path / "real" / "seahorse").mkdir(parents=True)
  assert cli.main(["synth", "--out", str(tmp_path / "real")]) == 2
  assert cli.main(["synth", "--out", str(tmp_path / "x"), "--langs", "en,fr"]) == 2
  assert "'fr'" in capsys.readouterr().err
