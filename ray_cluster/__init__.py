"""aihub: ray_cluster."""
