"""Random stand-in images of a dataset's shape, for ``debug=smoke`` when no copy is at hand.

They check that a configuration runs; their numbers mean nothing, and the record says so: the
provenance tag is ``<name>-stand-in`` and ``source.kind`` is ``generated``.
"""
from __future__ import annotations

import numpy as np

from bench.data.cache import PreparedDataset, Split

STAND_IN_SIZES = {"train": 256, "test": 64}


def stand_in(name: str, num_classes: int, channels: int, image_size: int, seed: int = 0,
             extra_splits: tuple[str, ...] = ()) -> PreparedDataset:
    """Uniform random uint8 images and labels (seeded) with ``name``'s shape and classes; ``extra_splits``
    (STL-10's ``unlabeled``) get the training split's size."""
    rng = np.random.default_rng(seed)
    sizes = {**STAND_IN_SIZES, **{split: STAND_IN_SIZES["train"] for split in extra_splits}}
    splits = {split: Split(rng.integers(0, 256, (n, image_size, image_size, channels), dtype=np.uint8),
                           rng.integers(0, num_classes, n).astype(np.int64))
              for split, n in sizes.items()}
    meta = {"dataset": name, "provenance": f"{name}-stand-in", "complete": False, "lossy": False,
            "source": {"kind": "generated"}, "sizes": sizes,
            "description": "random stand-in images (debug=smoke): checks that the run works, measures nothing"}
    return PreparedDataset(meta, splits)
