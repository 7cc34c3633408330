"""Fused compiled CPU backend (placeholder until the C extension lands)."""


def available():
    return False


def supports(kernel, op):
    return False
