"""Hypothesis profiles of the fuzz suite.

``mine-clusters-ci`` (the default): derandomised, so every run draws the same cases and a failure
reproduces; the per-test example counts of ``fuzz_cases.examples()`` add up to more than 1,000
cases. ``mine-clusters-explore``: fresh random cases and five times as many of them, for a
longer hunt (``MINE_CLUSTERS_FUZZ=explore``).
"""
import os

from hypothesis import HealthCheck, settings

_COMMON = dict(deadline=None, print_blob=True,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                      HealthCheck.filter_too_much])
settings.register_profile("mine-clusters-ci", derandomize=True, database=None, **_COMMON)
settings.register_profile("mine-clusters-explore", derandomize=False, **_COMMON)
