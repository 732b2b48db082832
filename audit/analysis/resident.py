"""Memory-mapped inputs: drop their pages from this process's resident set once a block has been read.

Per-text aggregates past the memory budget live in a memory-mapped file. Reading a block of its columns
maps pages into the process, and they stay counted in its resident size (RSS) until released, so a
column-by-column analysis of a 100,000-text set would end with the whole file resident. The data stays
in the file and the page cache; only this process's mapping of it is dropped.
"""

from __future__ import annotations

import mmap

import numpy as np


def release(array: np.ndarray) -> None:
    """Write a memory-mapped array's dirty pages to its file and drop them from this process's resident
    set; a no-op for ordinary arrays (and views of them)."""
    mapping = getattr(array, "_mmap", None)
    if isinstance(array, np.memmap) and mapping is not None and hasattr(mmap, "MADV_DONTNEED"):
        array.flush()
        mapping.madvise(mmap.MADV_DONTNEED)
