"""xlalign_tasks: importing this package registers the project's seqio tasks.

Tasks read their files when a dataset is requested, from the directory set by `configure()` (or
gin, or XLALIGN_DATA_DIR); see `settings.py`.
"""
from xlalign_tasks import smoke  # noqa: F401  (registers tasks)
from xlalign_tasks import oasst, pretrain, seahorse  # noqa: F401  (register per-language tasks)
from xlalign_tasks import mixtures  # noqa: F401  (registers mixtures of them)
from xlalign_tasks.settings import VOCABULARY, configure  # noqa: F401
