"""xlalign_jax: cross-lingual reward-model transfer for alignment. Import does no work."""

__version__ = "0.1.0"
