"""Dialogs about entities, written as OpenAssistant message trees (the export format).

The human states a few facts and asks about one (or says "tell me about E", or now and then asks
what was never said, where "I don't know" is right). Several assistant replies of varying quality
answer, ranked 0 = best by simulated rankers; some replies get a follow-up question ("and its R?")
with replies of their own, so contexts are multi-turn. Like real exports, a few messages are
deleted or synthetic, and single or unreviewed replies carry no rank.
"""
import dataclasses
import random
import uuid
from typing import Dict, List, Optional, Tuple

from xlalign_jax.synthetic import content, formats, knowledge, languages, raters
from xlalign_jax.synthetic.content import Item
from xlalign_jax.synthetic.knowledge import Fact
from xlalign_jax.synthetic.oracle import Oracle

# Reply plans and how often a simulated assistant writes each.
REPLY_KINDS = {"good": 0.24, "verbose": 0.14, "omission": 0.1, "binding": 0.15,
               "hallucinated": 0.12, "repeat": 0.08, "wrong_language": 0.07, "garbage": 0.1}
_ARTIFACT_RATE = 0.35
_FOLLOWUP_RATE = (0.35, 0.2)  # chance that a reply gets a follow-up, at depth 1 and 2
_DELETED_RATE = 0.03
_SYNTHETIC_RATE = 0.02
_UNRANKED_RATE = 0.05  # sibling groups nobody ranked: every rank is null


@dataclasses.dataclass(frozen=True)
class Turn:
  """What the human asked (relation None: "tell me about the entity") and what they said."""
  entity: str
  relation: Optional[str]
  known: List[Fact]

  def answer(self) -> List[Fact]:
    """The facts a good reply states."""
    if self.relation is not None:
      return [f for f in self.known if (f.entity, f.relation) == (self.entity, self.relation)]
    own = [f for f in self.known if f.entity == self.entity]
    return sorted(own, key=lambda f: -knowledge.salience(f, self.entity, False))[:2]


def first_turn(rng: random.Random, kb: knowledge.KnowledgeBase) -> Tuple[List[Item], Turn]:
  """A human's opening message: a few facts about an entity, then a question about it."""
  entity = rng.choice(list(kb.facts))
  known = rng.sample(kb.facts[entity], rng.randint(2, 4))
  related = [f.value for f in known if f.value in kb.facts]
  if related and rng.random() < 0.4:
    known.append(rng.choice(kb.facts[rng.choice(related)]))
  rng.shuffle(known)
  items = [Item("hello")] if rng.random() < 0.3 else []
  if rng.random() < 0.3:
    items.append(content.intro_item(entity, kb.types[entity]))
  items += [content.fact_item(f) for f in known]
  draw = rng.random()
  if draw < 0.2:
    turn = Turn(entity, None, known)
    items.append(Item("about", (("E", entity),)))
  else:
    own = [f.relation for f in known if f.entity == entity]
    unasked = [r for r in knowledge.ENTITY_TYPES[kb.types[entity]] if r not in own]
    relation = rng.choice(unasked if draw > 0.95 and unasked else own)
    turn = Turn(entity, relation, known)
    items.append(Item("question", (("E", entity), ("R", relation))))
  return items, turn


def _followup_turn(rng: random.Random, kb: knowledge.KnowledgeBase,
                   previous: Turn) -> Tuple[List[Item], Turn]:
  """"And its R?": another relation of the entity the conversation is about."""
  entity = previous.entity
  own = [f.relation for f in previous.known
         if f.entity == entity and f.relation != previous.relation]
  relation = rng.choice(own or list(knowledge.ENTITY_TYPES[kb.types[entity]]))
  items = [Item("thanks")] if rng.random() < 0.4 else []
  items.append(Item("followup", (("R", relation),)))
  return items, Turn(entity, relation, previous.known)


def _reply(rng: random.Random, kind: str, turn: Turn, lang: str) -> Tuple[List[Item], str]:
  """(items, language) of a reply of `kind` to `turn`."""
  facts = turn.answer()
  asked = [Fact(turn.entity, turn.relation, "?")] if turn.relation else []
  if kind == "verbose":
    others = [f for f in turn.known if f not in facts]
    facts = facts + rng.sample(others, min(len(others), rng.randint(1, 2)))
  elif kind == "omission":
    facts = facts[:-1]
  elif kind == "binding":
    facts = content.swap_binding(rng, facts or asked, turn.known)
  elif kind == "hallucinated":
    facts = content.hallucinate(rng, facts or asked, turn.known)
  elif kind == "repeat":
    facts = facts + facts[:1]
  elif kind == "wrong_language":
    lang = rng.choice([code for code in languages.LANG_CODES if code != lang])
  if kind == "garbage":
    return [content.garbage_item(rng)], lang
  items = [Item("sure")] if rng.random() < 0.3 else []
  items += [content.fact_item(f) for f in facts] or [Item("idk")]
  return items, lang


class TreeWriter:
  """Writes OpenAssistant trees in one language."""

  def __init__(self, rng: random.Random, oracle: Oracle, lang: str):
    self.rng, self.oracle, self.lang = rng, oracle, lang
    self.grammars = oracle.world.grammars
    self.kb = oracle.world.kb

  def tree(self) -> Dict:
    """One message tree: an opening question, ranked replies, and follow-ups under some."""
    items, turn = first_turn(self.rng, self.kb)
    root = self._message(None, "prompter", content.render(self.grammars[self.lang], items))
    self._add_replies(root, [("prompter", root["text"])], turn, depth=1)
    return {"message_tree_id": root["message_id"], "tree_state": "ready_for_export",
            "prompt": root}

  def _message(self, parent: Optional[Dict], role: str, text: str) -> Dict:
    rng = self.rng
    message = {"message_id": str(uuid.UUID(int=rng.getrandbits(128), version=4))}
    if parent is not None:
      message["parent_id"] = parent["message_id"]
    message.update(text=text, role=role, lang=self.lang, review_count=rng.randint(0, 3),
                   review_result=True, deleted=False, synthetic=False)
    if rng.random() < 0.5:
      message["emojis"] = {"+1": rng.randint(1, 5)}
    message["replies"] = []
    return message

  def _add_replies(self, prompt: Dict, turns: List[Tuple[str, str]], turn: Turn, depth: int):
    rng = self.rng
    count = rng.randint(2, 4) if depth == 1 else rng.randint(1, 3)
    kinds = rng.choices(list(REPLY_KINDS), weights=list(REPLY_KINDS.values()), k=count * 2)
    texts = []
    for kind in kinds:  # distinct texts only
      items, lang = _reply(rng, kind, turn, self.lang)
      text = content.render(self.grammars[lang], items, rng.random() < _ARTIFACT_RATE)
      if text not in texts:
        texts.append(text)
      if len(texts) == count:
        break
    task_input = formats.format_dialog_input(self.lang, turns)
    replies = [self._message(prompt, "assistant", text) for text in texts]
    for reply in replies:
      if rng.random() < _DELETED_RATE:
        reply["deleted"] = True
      elif rng.random() < _SYNTHETIC_RATE:
        reply.update(synthetic=True, model_name="sim-assistant-1")
    self._rank(replies, task_input)
    prompt["replies"] = replies
    if depth > len(_FOLLOWUP_RATE):
      return
    for reply in replies:
      if reply["deleted"] or rng.random() >= _FOLLOWUP_RATE[depth - 1]:
        continue
      items, next_turn = _followup_turn(rng, self.kb, turn)
      human = self._message(reply, "prompter", content.render(self.grammars[self.lang], items))
      human["deleted"] = rng.random() < _DELETED_RATE
      reply["replies"].append(human)
      self._add_replies(human, turns + [("assistant", reply["text"]), ("prompter", human["text"])],
                        next_turn, depth + 1)

  def _rank(self, replies: List[Dict], task_input: str):
    """Ranks for the live replies; OpenAssistant leaves single or unreviewed ones unranked."""
    live = [r for r in replies if not r["deleted"]]
    if len(live) < 2:
      return
    if self.rng.random() < _UNRANKED_RATE:
      for reply in live:
        reply["rank"] = None
      return
    assessments = [self.oracle.assess(self.lang, task_input, r["text"]) for r in live]
    for reply, rank in zip(live, raters.rank(self.rng, assessments)):
      reply["rank"] = rank


def order_fields(message: Dict) -> Dict:
  """The export's field order (rank after deleted, replies last), recursively."""
  keys = ("message_id", "parent_id", "text", "role", "lang", "review_count", "review_result",
          "deleted", "rank", "synthetic", "model_name", "emojis")
  ordered = {k: message[k] for k in keys if k in message}
  ordered["replies"] = [order_fields(r) for r in message["replies"]]
  return ordered
