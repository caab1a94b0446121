"""Helpers shared by several test packages, imported as ordinary typed modules (``tests.support.…``)."""
