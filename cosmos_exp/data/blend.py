"""Weighted draws from several sub-datasets, deterministic by seed and resumable by position; and the
per-source layout of a training list (dataset.blend_batches=per_source).

Draw k is a pure function of (seed, k): the component sequence comes from one seeded generator, and
the n-th draw from a component takes item perm_e[n % size] of that component's epoch-e permutation
(e = n // size), so no item repeats before the component is exhausted. Resuming at position k gives
exactly the draws an uninterrupted run would have made from k on.
"""

from typing import List, Sequence, Tuple

import numpy as np


def _check(sizes: Sequence[int], weights: Sequence[float]) -> np.ndarray:
    if len(sizes) != len(weights) or not sizes:
        raise ValueError("blend needs one weight per component and at least one component")
    w = np.asarray(weights, dtype=np.float64)
    if (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"blend weights must be >= 0 and not all 0, got {list(weights)}")
    for s, wi in zip(sizes, w):
        if wi > 0 and s <= 0:
            raise ValueError("a blend component with weight > 0 has no items")
    return w / w.sum()


def blend_draws(sizes: Sequence[int], weights: Sequence[float], seed: int, start: int, count: int) -> List[Tuple[int, int]]:
    """(component, item index) of draws start .. start+count-1."""
    p = _check(sizes, weights)
    end = start + count
    comps = np.random.default_rng([seed, 0x5EED]).choice(len(p), size=end, p=p)
    out: List[Tuple[int, int]] = []
    # occurrence number of each draw within its component, counted over all earlier positions
    order = np.zeros(end, dtype=np.int64)
    for c in range(len(p)):
        mask = comps == c
        order[mask] = np.arange(int(mask.sum()))
    perms = {}
    for k in range(start, end):
        c = int(comps[k])
        n = int(order[k])
        epoch, pos = divmod(n, sizes[c])
        key = (c, epoch)
        if key not in perms:
            perms[key] = np.random.default_rng([seed, c, epoch]).permutation(sizes[c])
        out.append((c, int(perms[key][pos])))
    return out


def arrange_by_source(samples: Sequence, block: int, seed: int) -> list:
    """The training list laid out so that every aligned run of `block` items (one optimizer step's global batch)
    comes from one source (meta["component"]): each source's items in their drawn order, cut into blocks, the
    last one filled up from that source's first items, the blocks in an order seeded by `seed`. Read in order,
    without shuffling, by both backends (our loader; cosmos-rl with dataloader_shuffle=false, whose per-rank
    DistributedSampler slices and batches then cover aligned runs too)."""
    if block < 1:
        raise ValueError(f"block size must be >= 1, got {block}")
    by_source: dict = {}
    for s in samples:
        by_source.setdefault(s.meta.get("component"), []).append(s)
    blocks = []
    for items in by_source.values():
        n_blocks = -(-len(items) // block)
        filled = [items[i % len(items)] for i in range(n_blocks * block)]
        blocks += [filled[i * block:(i + 1) * block] for i in range(n_blocks)]
    order = np.random.default_rng([seed, 0xB10C]).permutation(len(blocks))
    return [s for i in order for s in blocks[int(i)]]
