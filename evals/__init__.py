"""aihub: evals."""
