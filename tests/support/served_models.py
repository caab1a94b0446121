"""Ids of the real models the session fixtures in ``tests/conftest.py`` serve."""

SMOLLM2 = "smollm2"
ADAPTER = "adapters/pirate"
SMOLLM2_ADAPTER = f"{SMOLLM2}+{ADAPTER}"
