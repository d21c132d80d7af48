"""Stage 3, linear algebra: the per-level q×q algebra and the blocked Cholesky factorisation.

``small`` writes the q×q algebra out entry by entry, vectorised over levels; ``blocked`` factors the
mixed-model equations at theta. Both build PyTensor graphs.
"""
