"""aihub: retrievers."""
