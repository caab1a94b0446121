"""aihub: hub."""
