"""Import path for Ray's own CLI: ``serve run ray_cluster.app:app config=cluster.yaml``.

In a Serve config file (``serve deploy``)::

    applications:
      - name: aihub
        route_prefix: /
        import_path: ray_cluster.app:app
        args: {config: /shared/aihub/cluster.yaml}

Without ``config=`` the cluster YAML named by ``AIHUB_RAY_CONFIG`` is read.
"""

from __future__ import annotations

from typing import Any

from ray import serve

from ray_cluster.builder import build_app


def app(args: dict[str, Any]) -> serve.Application:
    """Serve application builder (Serve calls it with the ``args`` of the CLI or config file)."""
    return build_app(dict(args))
