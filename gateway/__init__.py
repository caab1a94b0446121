"""aihub: gateway."""
