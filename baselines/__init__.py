"""Baseline model plugins (one module per family), registered on import."""

from baselines import baseline1, mult, unimodal, xmodal  # noqa: F401  (importing registers the models)
