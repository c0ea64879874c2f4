"""The recipes' shared kit: resumable results files, config keys, loading a sibling script.

Not part of the rkhsreg package: the recipes are applications of its public API. A recipe script puts
the checkout on ``sys.path`` (``sys.path.insert(0, str(Path(__file__).resolve().parents[2]))``) and
imports ``recipes._common.<module>``.
"""
