"""Pure-torch kernels (no Lightning, no plugin registry): PGD, input gradients, spectral norms, deformations."""
