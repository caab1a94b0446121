"""Every benchmark: load generators, side-by-side runs against baselines and peers. May import every layer;
nothing imports it (``aihub bench`` finds it through the ``aihub.commands`` entry point)."""
