"""xlalign_jax: zero-shot cross-lingual alignment by reward-model transfer, in JAX/Flax.

Install: pip install -e .[test]    (see README.md for the two commands)
"""
from setuptools import setup

# Versions that install together on Python 3.11 (checked on 2026-11-23).
INSTALL_REQUIRES = [
    "jax==0.10.2",
    "jaxlib==0.10.2",
    "flax==0.12.8",
    "optax==0.2.8",
    "orbax-checkpoint==0.12.8",
    "seqio==0.0.20",
    "tensorflow-datasets==4.9.10",
    "sentencepiece==0.2.3",
    "gin-config==0.5.0",
    "clu==0.0.12",
    "tensorboard==2.21.0",  # clu's summary writer
    "tensorstore==0.1.86",
    "safetensors==0.7.0",
    "numpy==2.4.6",
    "tqdm==4.70.1",
    "psutil==7.2.2",  # memory budget checks before sampling
    "matplotlib==3.11.2",
]

setup(
    name="xlalign_jax",
    version="0.1.0",
    description="Cross-lingual reward-model transfer for alignment (mT5 / T5X layout) in JAX/Flax",
    python_requires=">=3.11,<3.12",
    packages=[
        "xlalign_jax",
        "xlalign_jax.trainers",
        "xlalign_jax.synthetic",
        "xlalign_jax.data",
        "xlalign_tasks",
        "xlalign_jax.gin_configs",
    ],
    package_dir={"xlalign_tasks": "tasks", "xlalign_jax.gin_configs": "gin_configs"},
    package_data={"xlalign_jax.gin_configs": ["*.gin", "*/*.gin"]},
    install_requires=INSTALL_REQUIRES,
    extras_require={
        # pytest-xdist: two workers, since most of the suite is XLA compiling on one core (README).
        "test": ["pytest==9.2.0", "pytest-xdist==3.8.0"],
        # Independent implementation for checkpoint parity tests (CPU build of torch).
        "parity": ["torch==2.13.0", "transformers==5.12.1"],
        "bench": ["torch==2.13.0", "transformers==5.12.1"],
        "tpu": ["jax[tpu]==0.10.2"],
    },
    entry_points={"console_scripts": ["xlalign=xlalign_jax.cli:main"]},
)
