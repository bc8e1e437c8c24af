"""Exact Hamming range search over the indexed keyframe hashes.

Contract: ``HammingSearch(hashes).range_search(queries, radius)`` returns every
(query row, indexed row, distance) with distance <= radius: an exact search,
no match may be lost. Hashes are (n, words) uint64 arrays.
"""
from __future__ import annotations

import numpy as np

# Bounds the temporary (queries x indexed) distance matrix to ~64 MB.
_CHUNK_CELLS = 16_000_000


class HammingSearch:
    def __init__(self, hashes: np.ndarray) -> None:
        self.hashes = np.ascontiguousarray(hashes, dtype=np.uint64)

    def __len__(self) -> int:
        return len(self.hashes)

    def range_search(self, queries: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        found_q, found_r, found_d = [], [], []
        if len(self.hashes) == 0 or len(queries) == 0:
            empty = np.zeros(0, np.int64)
            return empty, empty, empty.astype(np.int32)
        step = max(1, _CHUNK_CELLS // len(self.hashes))
        for start in range(0, len(queries), step):
            block = queries[start:start + step]
            dist = np.zeros((len(block), len(self.hashes)), np.int32)
            for word in range(self.hashes.shape[1]):
                dist += np.bitwise_count(block[:, word, None] ^ self.hashes[None, :, word])
            q, r = np.nonzero(dist <= radius)
            found_q.append(q + start)
            found_r.append(r)
            found_d.append(dist[q, r])
        return np.concatenate(found_q), np.concatenate(found_r), np.concatenate(found_d)
