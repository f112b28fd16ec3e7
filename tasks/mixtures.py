"""Mixtures of the per-language tasks, sampled at equal rates.

- `xlalign_v1.{seahorse,oasst}.all.sft`: multilingual SFT over the six languages.
- `xlalign_v1.{seahorse,oasst}.all.rm`:  a multilingual reward model.
- `xlalign_v1.{seahorse,oasst}.{a}_{b}.rm`: bilingual reward models, languages in alphabetical
  order (`en_es`, never `es_en`); seqio task names allow no `+`.
"""
import itertools

import seqio

from xlalign_tasks import oasst
from xlalign_tasks import seahorse

for _module in (seahorse, oasst):
  for _kind in ("sft", "rm"):
    seqio.MixtureRegistry.add(f"{_module.PREFIX}.all.{_kind}",
                              [f"{_module.PREFIX}.{lang}.{_kind}" for lang in _module.LANGS],
                              default_rate=1.0)
  for _a, _b in itertools.combinations(sorted(_module.LANGS), 2):
    seqio.MixtureRegistry.add(f"{_module.PREFIX}.{_a}_{_b}.rm",
                              [f"{_module.PREFIX}.{_a}.rm", f"{_module.PREFIX}.{_b}.rm"],
                              default_rate=1.0)
