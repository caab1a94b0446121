"""aihub: serving."""
