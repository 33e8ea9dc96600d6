"""Harvest-resistance harness: a synthetic corpus, a benign replay and coverage-maximising crawlers.

Run ``python benchmarks/harvest/run.py --cache DIR`` for the numbers at the default limits;
``tests/integration/test_harvest.py`` runs the same harness at test scale.
"""
