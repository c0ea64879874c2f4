"""The recipes' shared kit: one resumable runner, results files, config keys, loading a sibling script.

- :mod:`recipes._common.runner`: :class:`~recipes._common.runner.Runner`, which each recipe's ``run.py``
  subclasses (results files, provenance, the coordinate-by-coordinate validation grid, option checks);
- :mod:`recipes._common.results`: one CSV line appended per finished run, tables and docs blocks written atomically;
- :mod:`recipes._common.config_keys`: dotted keys into nested configs, rows files, integer-list options;
- :mod:`recipes._common.scripts`: loading a recipe script (a file, not a package) as a module.

Not part of the rkhsreg package: the recipes are applications of its public API. A recipe script puts
the checkout on ``sys.path`` (``sys.path.insert(0, str(Path(__file__).resolve().parents[2]))``) and
imports ``recipes._common.<module>``.
"""
