"""PyTorch Lightning integration: callbacks, a classifier module and weight schedules.

Needs ``pip install 'rkhsreg[lightning]'``; the core ``rkhsreg`` package never imports Lightning.

Example:
    >>> from rkhsreg.lightning import RKHSRegularization, RKHSNormMonitor           # doctest: +SKIP
    >>> trainer = pl.Trainer(callbacks=[RKHSRegularization({"gradient_norm": {"weight": 0.1}}),
    ...                                 RKHSNormMonitor(every_n_steps=100)])         # doctest: +SKIP
"""

from rkhsreg.lightning._adapters import default_batch_to_inputs
from rkhsreg.lightning._compat import PACKAGE
from rkhsreg.lightning.callback import RKHSRegularization, ResumeWarning
from rkhsreg.lightning.cifar10_data import CIFAR10Data, cifar10_transforms
from rkhsreg.lightning.classifier import RegularizedClassifier
from rkhsreg.lightning.mnist_data import MNISTSubset
from rkhsreg.lightning.monitor import RKHSNormMonitor, plot_norm_bounds
from rkhsreg.lightning.robust_accuracy import RobustAccuracy
from rkhsreg.functional.schedules import Constant, LinearWarmup, RadiusDecay, Schedule

__all__ = ["RKHSRegularization", "ResumeWarning", "RKHSNormMonitor", "RobustAccuracy", "RegularizedClassifier", "MNISTSubset", "CIFAR10Data",
           "cifar10_transforms", "plot_norm_bounds", "Schedule",
           "Constant", "LinearWarmup", "RadiusDecay", "default_batch_to_inputs", "PACKAGE"]
