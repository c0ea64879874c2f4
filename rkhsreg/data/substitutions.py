"""Sequence data augmentation: random residue substitutions drawn from BLOSUM62.

The paper's protein (∗) rows use "data augmentation" without defining it here; ours is: each
standard residue ``a`` of a training sequence is, independently with probability ``p``, replaced
by a residue ``b ≠ a`` drawn from the BLOSUM62 conditional ``P(b | a) ∝ q_ab`` (b ≠ a). Unknown
residues and padding are left alone; the length never changes. A fresh draw is made every epoch.

BLOSUM62 scores are half-bit log-odds ``s_ab = 2 log₂(q_ab / (p_a p_b))``, so the target
frequencies are ``q_ab = p_a p_b 2^{s_ab/2}`` for background frequencies ``p``. We recover ``p``
from the matrix itself: the pair frequencies must have the background as marginals
(``Σ_b q_ab = p_a``), i.e. ``Σ_b p_b 2^{s_ab/2} = 1`` for every ``a``, a linear system. The scores
are rounded integers, so this ``p`` is close to, not equal to, the published BLOSUM62 background
(within 0.02 per residue, e.g. A 0.082 vs 0.074; checked by the tests). Only ``P(b | a)`` is used; the ``p_a`` factor
cancels in it, so ``P(b | a) ∝ p_b 2^{s_ab/2}``.

Sampling and application are separate (Kornia-style): :meth:`BlosumSubstitution.sample` draws
the substitutions for an index tensor, :func:`apply_substitutions` replays them.

Example:
    >>> aug = BlosumSubstitution(p=0.1, seed=0)
    >>> idx = sequence_indices(["MKVLAAGIVG"], length=12)   # doctest: +SKIP
    >>> aug(idx).shape                                        # doctest: +SKIP
    torch.Size([1, 12])
"""

from __future__ import annotations

from functools import lru_cache

import torch

from rkhsreg._checks import check_int, check_real
from rkhsreg._errors import InputError
from rkhsreg.data.protein import AMINO_ACIDS

__all__ = ["BLOSUM62_ORDER", "BLOSUM62", "blosum62_matrix", "blosum62_background", "substitution_probabilities",
           "BlosumSubstitution", "apply_substitutions"]

#: Row/column order of :data:`BLOSUM62` (the order of its publication).
BLOSUM62_ORDER = "ARNDCQEGHILKMFPSTWYV"
#: The BLOSUM62 matrix (Henikoff & Henikoff 1992), half-bit units, standard residues only.
BLOSUM62 = (
    # A   R   N   D   C   Q   E   G   H   I   L   K   M   F   P   S   T   W   Y   V
    (4, -1, -2, -2, 0, -1, -1, 0, -2, -1, -1, -1, -1, -2, -1, 1, 0, -3, -2, 0),          # A
    (-1, 5, 0, -2, -3, 1, 0, -2, 0, -3, -2, 2, -1, -3, -2, -1, -1, -3, -2, -3),          # R
    (-2, 0, 6, 1, -3, 0, 0, 0, 1, -3, -3, 0, -2, -3, -2, 1, 0, -4, -2, -3),              # N
    (-2, -2, 1, 6, -3, 0, 2, -1, -1, -3, -4, -1, -3, -3, -1, 0, -1, -4, -3, -3),         # D
    (0, -3, -3, -3, 9, -3, -4, -3, -3, -1, -1, -3, -1, -2, -3, -1, -1, -2, -2, -1),      # C
    (-1, 1, 0, 0, -3, 5, 2, -2, 0, -3, -2, 1, 0, -3, -1, 0, -1, -2, -1, -2),             # Q
    (-1, 0, 0, 2, -4, 2, 5, -2, 0, -3, -3, 1, -2, -3, -1, 0, -1, -3, -2, -2),            # E
    (0, -2, 0, -1, -3, -2, -2, 6, -2, -4, -4, -2, -3, -3, -2, 0, -2, -2, -3, -3),        # G
    (-2, 0, 1, -1, -3, 0, 0, -2, 8, -3, -3, -1, -2, -1, -2, -1, -2, -2, 2, -3),          # H
    (-1, -3, -3, -3, -1, -3, -3, -4, -3, 4, 2, -3, 1, 0, -3, -2, -1, -3, -1, 3),         # I
    (-1, -2, -3, -4, -1, -2, -3, -4, -3, 2, 4, -2, 2, 0, -3, -2, -1, -2, -1, 1),         # L
    (-1, 2, 0, -1, -3, 1, 1, -2, -1, -3, -2, 5, -1, -3, -1, 0, -1, -3, -2, -2),          # K
    (-1, -1, -2, -3, -1, 0, -2, -3, -2, 1, 2, -1, 5, 0, -2, -1, -1, -1, -1, 1),          # M
    (-2, -3, -3, -3, -2, -3, -3, -3, -1, 0, 0, -3, 0, 6, -4, -2, -2, 1, 3, -1),          # F
    (-1, -2, -2, -1, -3, -1, -1, -2, -2, -3, -3, -1, -2, -4, 7, -1, -1, -4, -3, -2),     # P
    (1, -1, 1, 0, -1, 0, 0, 0, -1, -2, -2, 0, -1, -2, -1, 4, 1, -3, -2, -2),             # S
    (0, -1, 0, -1, -1, -1, -1, -2, -2, -1, -1, -1, -1, -2, -1, 1, 5, -2, -2, 0),         # T
    (-3, -3, -4, -4, -2, -2, -3, -2, -2, -3, -2, -3, -1, 1, -4, -3, -2, 11, 2, -3),      # W
    (-2, -2, -2, -3, -2, -1, -2, -3, 2, -1, -1, -2, -1, 3, -3, -2, -2, 2, 7, -1),        # Y
    (0, -3, -3, -3, -1, -2, -2, -3, -3, 3, 1, -2, 1, -1, -2, -2, 0, -3, -1, 4),          # V
)


def blosum62_matrix() -> torch.Tensor:
    """BLOSUM62 as a (20, 20) float64 tensor in the order of :data:`AMINO_ACIDS` (the one-hot channels)."""
    perm = [BLOSUM62_ORDER.index(a) for a in AMINO_ACIDS]
    table = torch.tensor(BLOSUM62, dtype=torch.float64)
    return table[perm][:, perm]


@lru_cache(maxsize=1)
def _background() -> torch.Tensor:
    odds = torch.pow(2.0, blosum62_matrix() / 2)
    return torch.linalg.solve(odds, torch.ones(20, dtype=torch.float64))


def blosum62_background() -> torch.Tensor:
    """Background frequencies p (20,) implied by BLOSUM62 (order :data:`AMINO_ACIDS`; see the module docstring)."""
    p = _background().clone()
    return p / p.sum()


def substitution_probabilities() -> torch.Tensor:
    """``P[a, b] = P(b | a, b ≠ a) ∝ p_b 2^{s_ab/2}``, zero diagonal, rows summing to 1 (order :data:`AMINO_ACIDS`)."""
    weights = blosum62_background()[None, :] * torch.pow(2.0, blosum62_matrix() / 2)
    weights.fill_diagonal_(0.0)
    return weights / weights.sum(dim=1, keepdim=True)


def apply_substitutions(indices: torch.Tensor, where: torch.Tensor, replacement: torch.Tensor) -> torch.Tensor:
    """``indices`` with ``replacement`` at the positions where ``where`` is True (a new tensor)."""
    return torch.where(where, replacement, indices)


class BlosumSubstitution:
    """Random BLOSUM62 substitutions of residue-index tensors (see the module docstring).

    Args:
        p: substitution probability per standard residue, in [0, 1].
        seed: seed of the augmentation's own generator (the global RNG is never used).

    Example:
        >>> aug = BlosumSubstitution(p=0.2, seed=1)
        >>> out = aug(torch.zeros(2, 50, dtype=torch.long))   # all alanine
        >>> bool((out != 0).any()), bool((out == 0).any())
        (True, True)
    """

    def __init__(self, p: float = 0.1, seed: int = 0) -> None:
        self.p = check_real("p", p, low=0.0, high=1.0)
        self.seed = check_int("seed", seed, low=0)
        self.generator = torch.Generator().manual_seed(self.seed)
        self._table = substitution_probabilities().float()

    def sample(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw ``(where, replacement)`` for an index tensor: the positions to change and their new residues."""
        if not isinstance(indices, torch.Tensor) or indices.is_floating_point():
            raise InputError(f"indices={type(indices).__name__} is not an integer tensor; pass residue indices "
                             "from rkhsreg.data.sequence_indices.")
        standard = (indices >= 0) & (indices < len(AMINO_ACIDS))
        where = (torch.rand(indices.shape, generator=self.generator) < self.p) & standard
        replacement = indices.clone()
        if bool(where.any()):
            rows = self._table[indices[where]]
            replacement[where] = torch.multinomial(rows, 1, generator=self.generator).squeeze(1)
        return where, replacement

    def __call__(self, indices: torch.Tensor) -> torch.Tensor:
        """A substituted copy of ``indices`` (``indices`` itself is not modified)."""
        where, replacement = self.sample(indices)
        return apply_substitutions(indices, where, replacement)

    def state_dict(self) -> dict:
        """The generator state (resume the same stream)."""
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`."""
        self.generator.set_state(state["generator"])

    def __repr__(self) -> str:
        return f"BlosumSubstitution(p={self.p}, seed={self.seed})"
