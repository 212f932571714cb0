"""A bounded in-memory cache of finished results (entries and bytes), keyed by :class:`~earmark.jobs.JobSpec`."""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from typing import Any, Mapping

import numpy as np
from torch import Tensor

from ..explanation import Explanation


def nbytes(obj: Any) -> int:
    """Approximate memory held by a result: tensors, arrays, and the containers around them."""
    if isinstance(obj, Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, np.ndarray):
        return int(obj.nbytes)
    if isinstance(obj, (bytes, bytearray, str)):
        return len(obj)
    if isinstance(obj, Explanation):
        return nbytes(obj.saliency) + nbytes(obj.uncertainty) + nbytes(obj.extras) + 1024
    if isinstance(obj, Mapping):
        return sum(nbytes(v) for v in obj.values()) + 64 * len(obj)
    if isinstance(obj, (list, tuple)):
        return sum(nbytes(v) for v in obj) + 16 * len(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return sum(nbytes(getattr(obj, f.name)) for f in dataclasses.fields(obj))
    return 64


class ResultCache:
    """A thread-safe LRU of finished results, bounded in entries and in bytes (see :func:`nbytes`).

    The newest entry is always kept, so memory stays below ``max(max_bytes, largest result)``.
    """

    def __init__(self, max_entries: int = 256, max_bytes: int = 512 * 2 ** 20):
        self.max_entries, self.max_bytes = int(max_entries), int(max_bytes)
        self._items: OrderedDict[Any, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            hit = self._items.get(key)
            if hit is None:
                return None
            self._items.move_to_end(key)
            return hit[0]

    def put(self, key: Any, value: Any) -> None:
        size = nbytes(value)
        with self._lock:
            if key in self._items:
                self._bytes -= self._items.pop(key)[1]
            self._items[key] = (value, size)
            self._bytes += size
            while len(self._items) > 1 and (len(self._items) > self.max_entries or self._bytes > self.max_bytes):
                _, (_, old) = self._items.popitem(last=False)
                self._bytes -= old

    def __contains__(self, key: Any) -> bool:
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    @property
    def bytes(self) -> int:
        with self._lock:
            return self._bytes


__all__ = ["ResultCache", "nbytes"]
