"""Train / val / test splits by identity: no identity appears in two splits.

A swap involves two identities (its source and its target), so identities linked by a pair
must share a split: the splits are made of whole groups of linked identities (connected
components of the pair graph), assigned greedily — largest group first, to the split furthest
below its share of identities, except that no split with a share is left empty while there
are groups enough to fill it; ties broken by a shuffle seeded with the dataset's seed.
"""

from __future__ import annotations

import random
from typing import Iterable

SPLITS = ("train", "val", "test")


def identity_groups(identities: Iterable[str], pairs: Iterable[tuple[str, str]]) -> list[list[str]]:
    """Connected components of identities linked by pairs, each sorted, in a stable order."""
    parent: dict[str, str] = {i: i for i in identities}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        parent.setdefault(a, a)
        parent.setdefault(b, b)
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[str, list[str]] = {}
    for i in parent:
        groups.setdefault(find(i), []).append(i)
    return sorted((sorted(g) for g in groups.values()), key=lambda g: g[0])


def assign_splits(identities: Iterable[str], pairs: Iterable[tuple[str, str]], shares: tuple[float, float, float], seed: int) -> dict[str, str]:
    """identity → "train" / "val" / "test"."""
    groups = identity_groups(identities, list(pairs))
    random.Random(seed).shuffle(groups)
    groups.sort(key=len, reverse=True)  # stable: equal sizes keep the shuffled order
    total = sum(len(g) for g in groups)
    have = {s: 0 for s in SPLITS}
    out: dict[str, str] = {}
    for n, g in enumerate(groups):
        # the split furthest below its share (share × total − what it has); train first on ties;
        # when only as many groups are left as splits with a share still empty, those splits first
        want = {s: shares[k] * total - have[s] for k, s in enumerate(SPLITS)}
        empty = [s for k, s in enumerate(SPLITS) if shares[k] > 0 and have[s] == 0]
        choices = empty if empty and len(groups) - n <= len(empty) else list(SPLITS)
        best = max(choices, key=lambda s: (want[s], -SPLITS.index(s)))
        have[best] += len(g)
        for i in g:
            out[i] = best
    return out
