"""``rkhsreg fit|validate|test|predict --config cfg.yaml``: LightningCLI over ``RegularizedClassifier``."""

from __future__ import annotations

import sys

from rkhsreg.cli.errors import EXIT_USAGE

__all__ = ["LIGHTNING_COMMANDS", "lightning_cli"]


#: Subcommands handed to LightningCLI (training from a YAML config).
LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")


def lightning_cli(argv: list[str]) -> int:
    """``rkhsreg fit --config cfg.yaml``: LightningCLI over RegularizedClassifier and any LightningDataModule."""
    try:
        import importlib

        from rkhsreg.lightning._compat import pl
        from rkhsreg.lightning.classifier import RegularizedClassifier

        LightningCLI = importlib.import_module(f"{pl.__name__}.cli").LightningCLI  # the Lightning rkhsreg uses
    except ImportError as exc:
        sys.stderr.write(f"rkhsreg {argv[0]}: error: training needs Lightning and jsonargparse "
                         f"(pip install 'rkhsreg[lightning]'): {exc}\n")
        return EXIT_USAGE
    LightningCLI(RegularizedClassifier, pl.LightningDataModule, subclass_mode_data=True, args=argv,
                 save_config_kwargs={"overwrite": True})
    return 0
