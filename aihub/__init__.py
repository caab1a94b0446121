"""aihub: aihub."""
