"""A catalogue of bad or unusual inputs across the public API and the CLI.

Every case asserts the exception type and that the message names the parameter (or the thing at fault)
and the value given, so a user can fix the call from the message alone. Non-finite data follow one
policy: non-finite *inputs* are refused with an ``InputError``; a model whose *output* is non-finite
(NaN weights) gives a NaN penalty, never a finite number.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

import rkhsreg
from rkhsreg import ConfigurationError, InputError, ParameterError, PluginNotFoundError, SelectLogits
from rkhsreg.data import select_indices
from rkhsreg.evaluation.settings import AttackSettings, DeformationBudget, DeformationSearch


def _net(classes: int = 3, channels: int = 1) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(channels, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                         nn.Linear(16, classes))


class _TupleNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = _net()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.net(x)
        return out, out.detach()


class _DictNet(_TupleNet):
    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:  # type: ignore[override]
        return {"logits": self.net(x), "features": x}


class _ScoreNet(_TupleNet):
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.net(x)[:, 0]


class _DetachedNet(_TupleNet):
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return torch.from_numpy(self.net(x).detach().numpy())   # a numpy round trip: cut from the input


def _vgg5() -> nn.Module:
    from rkhsreg.models import mnist_vgg5
    torch.manual_seed(0)
    return mnist_vgg5(width=4)   # four 2x2 poolings: 28 -> 1, 8 -> 0


X = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
Y = torch.tensor([0, 1, 2, 1])


def _nan(x: torch.Tensor, value: float = math.nan) -> torch.Tensor:
    x = x.clone()
    x[1, 0, 3, 3] = value
    return x


def _penalty(name: str, **kwargs: Any) -> Callable[[], Any]:
    return lambda: rkhsreg.create_penalty(name, **kwargs)


def _call(name: str, model: nn.Module | None = None, x: Any = None, y: Any = Y, **kwargs: Any) -> Callable[[], Any]:
    small = {"adversarial_deformation": {"num_examples": 4, "num_deformations": 2},
             "tangent_propagation": {"num_examples": 4, "num_tangents": 2}}.get(name, {})
    return lambda: rkhsreg.create_penalty(name, **{**small, **kwargs})(model or _net(), X if x is None else x, y)


def _project(model: nn.Module, **kwargs: Any) -> Callable[[], Any]:
    return lambda: rkhsreg.create_constraint("spectral_norm_projection", **kwargs)(model)


def _nan_weight() -> nn.Module:
    model = _net()
    with torch.no_grad():
        model[4].weight[0, 0] = math.nan
    return model


def _evaluate(model: nn.Module | None = None, data: Any = None, **kwargs: Any) -> Callable[[], Any]:
    from rkhsreg.evaluation import evaluate_robustness

    def run() -> Any:
        options = {"epsilons": [0.1], "attack": AttackSettings(steps=2), "sanity": False, **kwargs}
        return evaluate_robustness(model or _net().eval(), (X, Y) if data is None else data, **options)
    return run


def _deformations(model: nn.Module | None = None, data: Any = None, **kwargs: Any) -> Callable[[], Any]:
    from rkhsreg.evaluation import evaluate_deformations
    return lambda: evaluate_deformations(model or _net().eval(), (X, Y) if data is None else data, **kwargs)


def _certified(**kwargs: Any) -> Callable[[], Any]:
    from rkhsreg.evaluation import certified_accuracy
    return lambda: certified_accuracy(_net().eval(), (X, Y), **kwargs)


def _certified_radii(model: nn.Module | None = None, labels: Any = Y, **kwargs: Any) -> Callable[[], Any]:
    from rkhsreg.evaluation import certified_radii
    return lambda: certified_radii(model or _net().eval(), X, labels, **kwargs)


class _MixedSizes(torch.utils.data.Dataset):
    """Two 8×8 images, then two 10×10."""

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        side = 8 if i < 2 else 10
        return torch.rand(1, side, side), int(Y[i])


class _Argmax(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = _net()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).argmax(1)


def _operator_norm(**kwargs: Any) -> Callable[[], Any]:
    from rkhsreg.functional.spectral import conv_operator_norm
    return lambda: conv_operator_norm(nn.Conv2d(1, 2, 3), **kwargs)


def _deformation_aug(**kwargs: Any) -> Callable[[], Any]:
    from rkhsreg.transforms import RandomDeformation
    return lambda: RandomDeformation(**kwargs)


def _build_model(spec: str, kwargs: Any = None) -> Callable[[], Any]:
    from rkhsreg.cli.models import build_model
    return lambda: build_model(spec, kwargs=kwargs)


def _load_dataset(name: str, data_dir: Any = None, split: str = "test") -> Callable[[], Any]:
    from rkhsreg.cli.datasets import load_dataset
    return lambda: load_dataset(name, data_dir, split=split)


# (id, call, exception type, regexes that must all appear in the message)
CASES: list[tuple[str, Callable[[], Any], type[BaseException], tuple[str, ...]]] = [
    # --- registry
    ("unknown penalty with a suggestion", _penalty("adversarial_perturbaton"), PluginNotFoundError,
     ("adversarial_perturbaton", "adversarial_perturbation")),
    ("unknown constraint", lambda: rkhsreg.create_constraint("spectral_projection"), PluginNotFoundError,
     ("spectral_projection",)),
    ("unknown keyword", _penalty("gradient_norm", epsilon=1.0), ConfigurationError, ("epsilon",)),
    # --- penalty arguments
    ("negative weight", _penalty("gradient_norm", weight=-1.0), ConfigurationError, ("weight", "-1.0")),
    ("nan weight", _penalty("gradient_norm", weight=math.nan), ConfigurationError, ("weight", "nan")),
    ("string weight", _penalty("gradient_norm", weight="0.1"), ConfigurationError, ("weight", "'0.1'")),
    ("bool weight", _penalty("gradient_norm", weight=True), ConfigurationError, ("weight", "True")),
    ("negative epsilon", _penalty("adversarial_perturbation", epsilon=-0.5), ConfigurationError,
     ("epsilon", "-0.5")),
    ("infinite epsilon", _penalty("adversarial_perturbation", epsilon=math.inf), ConfigurationError,
     ("epsilon", "inf")),
    ("zero steps", _penalty("adversarial_perturbation", steps=0), ConfigurationError, ("steps", "0")),
    ("float steps", _penalty("adversarial_perturbation", steps=2.5), ConfigurationError, ("steps", "2.5")),
    ("unknown norm", _penalty("adversarial_perturbation", norm="l3"), ConfigurationError, ("norm", "'l3'", "'l2'")),
    ("unknown mode", _penalty("gradient_norm", mode="max"), ConfigurationError, ("mode", "'max'", "per_class")),
    ("zero candidates", _penalty("adversarial_perturbation", candidates=0), ConfigurationError,
     ("candidates", "0", "'all'")),
    ("negative classes", _penalty("gradient_norm", classes=-1), ConfigurationError, ("classes", "-1")),
    ("reversed clip", _penalty("adversarial_perturbation", clip=(1.0, 0.0)), ConfigurationError,
     ("clip", r"\(1.0, 0.0\)")),
    ("negative seed", _penalty("adversarial_perturbation", seed=-3), ConfigurationError, ("seed", "-3")),
    ("unknown deformation search", _penalty("adversarial_deformation", search="grid"), ConfigurationError,
     ("search", "'grid'")),
    ("zero deformations", _penalty("adversarial_deformation", num_deformations=0), ConfigurationError,
     ("num_deformations", "0")),
    ("unknown padding mode", _penalty("adversarial_deformation", padding_mode="wrap"), ConfigurationError,
     ("padding_mode", "'wrap'")),
    ("zero tangents", _penalty("tangent_propagation", num_tangents=0), ConfigurationError, ("num_tangents", "0")),
    ("loss-gradient p outside 1, 2", _penalty("loss_gradient", p=3), ConfigurationError, ("p", "3")),
    ("zero power iterations", _penalty("spectral_norm", iterations=0), ConfigurationError, ("iterations", "0")),
    # --- options that apply only in another mode (OnlyWhen/AtMost declarations): refused, never ignored
    ("budget with fixed candidates (1.12)", _penalty("adversarial_perturbation", candidates=4, budget=30.0),
     ParameterError, ("budget=30.0 has no effect with candidates=4", "only when candidates='auto'")),
    ("check_every with fixed candidates (1.52)", _penalty("adversarial_perturbation", candidates=4, check_every=5),
     ParameterError, ("check_every=5 has no effect with candidates=4", "candidates='auto'")),
    ("num_deformations with the adversarial search (1.18)",
     _penalty("adversarial_deformation", search="adversarial", num_deformations=100), ParameterError,
     ("num_deformations=100 has no effect with search='adversarial'", "only when search='random'")),
    ("steps with the default random search (1.19)", _penalty("adversarial_deformation", steps=50, step_size=0.5),
     ParameterError, ("steps=50 has no effect with search='random'", "pass search='adversarial'")),
    ("step_size with the random search (1.19)", _penalty("adversarial_deformation", step_size=0.5), ParameterError,
     ("step_size=0.5 has no effect with search='random'",)),
    ("input_shape with method reshape (1.61)", lambda: rkhsreg.create_constraint("spectral_norm_projection",
                                                                                 input_shape=(1, 8, 8)),
     ParameterError, (r"input_shape=\(1, 8, 8\) has no effect with method='reshape'", "method='operator'")),
    ("input_shape with method reshape, penalty (1.61)", _penalty("spectral_norm", input_shape=(1, 8, 8)),
     ParameterError, (r"input_shape=\(1, 8, 8\) has no effect with method='reshape'",)),
    ("iterations with the exact norm", _penalty("spectral_norm", exact=True, iterations=20), ParameterError,
     ("iterations=20 has no effect with exact=True",)),
    ("translation above max_displacement (1.20)",
     _penalty("adversarial_deformation", translation=5.0, max_displacement=2.0), ParameterError,
     ("translation=5.0 is larger than max_displacement=2.0", "pass translation <= 2.0")),
    ("deformation budget translation above max_displacement (4.54)",
     lambda: DeformationBudget(max_displacement=1.0, translation=4.0), ParameterError,
     ("DeformationBudget", "translation=4.0 is larger than max_displacement=1.0")),
    ("deformation search steps without the ascent", lambda: DeformationSearch(adversarial=False, steps=3),
     ParameterError, ("steps=3 has no effect with adversarial=False",)),
    ("subset seed with first_n (6.21)", lambda: select_indices(10, first_n=3, seed=7), ParameterError,
     ("seed=7 has no effect with n_examples=None", "a drawn subset")),
    # --- penalty calls: models
    ("model is a function", _call("gradient_norm", model=lambda z: z), InputError, ("model", "function")),
    ("model without parameters", _call("gradient_norm", model=nn.ReLU()), InputError, ("no parameters",)),
    ("tuple output", _call("gradient_norm", model=_TupleNet()), InputError, ("tuple", "SelectLogits")),
    ("dict output", _call("adversarial_perturbation", model=_DictNet()), InputError,
     ("dict", "'features', 'logits'", "SelectLogits")),
    ("1-D output", _call("loss_gradient", model=_ScoreNet()), InputError, (r"shape \(4,\)", r"\(N, K\)")),
    ("tuple output, deformation", _call("adversarial_deformation", model=_TupleNet()), InputError,
     ("tuple", "SelectLogits")),
    ("tuple output, tangent", _call("tangent_propagation", model=_TupleNet()), InputError, ("tuple",)),
    ("tuple output, adversarial training", _call("adversarial_training", model=_TupleNet()), InputError, ("tuple",)),
    ("SelectLogits with a bad key", _call("gradient_norm", model=SelectLogits(_DictNet(), "scores")), InputError,
     ("select='scores'", "dict")),
    ("SelectLogits with a key typo", _call("gradient_norm", model=SelectLogits(_DictNet(), "logit")), InputError,
     ("select='logit'", "its keys are 'logits', 'features'",
      r"did you mean select='logits'\?")),
    ("SelectLogits index past a tuple", _call("gradient_norm", model=SelectLogits(_TupleNet(), 3)), InputError,
     ("select=3", "it is a tuple of 2", r"pass select=0 to 1 \(or -2 to -1\)")),
    ("SelectLogits with a bad selector", lambda: SelectLogits(_net(), select=1.5), ConfigurationError,
     ("select=1.5",)),
    ("forward detaches its output", _call("gradient_norm", model=_DetachedNet()), InputError,
     (r"output \(shape \(4, 3\)\) is not connected to its input", r"\.detach\(\)", "no_grad")),
    ("forward detaches its output, in a sweep", _evaluate(model=_DetachedNet().eval()), InputError,
     ("not connected to its input",)),
    ("forward detaches its output, random deformation search", _call("adversarial_deformation",
                                                                      model=_DetachedNet()), InputError,
     ("adversarial_deformation", "does not depend on the model's trainable parameters", r"\.detach\(\)")),
    ("Normalize with 3-channel statistics on 1-channel inputs", _call("gradient_norm", model=nn.Sequential(
        rkhsreg.Normalize(mean=(0.5, 0.5, 0.5), std=(0.2, 0.2, 0.2)), _net())), InputError,
     ("Normalize has statistics for 3 channels", r"inputs have 1 channel\(s\)", "one mean and std per input channel")),
    # --- penalty calls: inputs and targets
    ("inputs is a list", _call("gradient_norm", x=[[0.0]]), InputError, ("inputs=list",)),
    ("integer inputs", _call("gradient_norm", x=(X * 255).to(torch.uint8)), InputError, ("inputs", "uint8")),
    ("inputs without batch", _call("gradient_norm", x=torch.rand(8)), InputError, ("inputs", r"\(8,\)")),
    ("empty batch", _call("gradient_norm", x=torch.rand(0, 1, 8, 8), y=Y[:0]), InputError, ("empty batch",)),
    ("3-D images for a deformation", _call("adversarial_deformation", x=torch.rand(4, 8, 8)), InputError,
     ("inputs", r"\(4, 8, 8\)", "rank 4")),
    ("targets of another batch size", _call("loss_gradient", y=Y[:3]), InputError, ("targets", r"\(3,\)", r"\(4,\)")),
    ("float targets", _call("loss_gradient", y=Y.float()), InputError, ("targets", "float32")),
    ("missing targets", _call("loss_gradient", y=None), InputError, ("targets=None",)),
    ("target out of range", _call("loss_gradient", y=torch.tensor([0, 1, 3, 1])), InputError,
     ("targets", "class 3", "3 scores", r"\[0, 2\]")),
    ("negative target", _call("gradient_norm", y=torch.tensor([0, -1, 2, 1]), classes=1), InputError,
     ("targets", "class -1")),
    ("1-class model, target 1", _call("loss_gradient", model=_net(1), y=torch.tensor([0, 1, 0, 0])), InputError,
     ("class 1", "1 scores")),
    ("float64 model, float32 inputs", _call("gradient_norm", model=_net().double()), InputError,
     ("dtype torch.float32", "torch.float64")),
    ("channel mismatch", _call("gradient_norm", x=torch.rand(4, 3, 8, 8)), InputError,
     ("inputs have 3 channels", r"first convolution '0' \(Conv2d, 1 input channel\) takes 1")),
    ("channels-last images, penalty", _call("gradient_norm", x=torch.rand(4, 8, 8, 1)), InputError,
     (r"shape \(4, 8, 8, 1\)", r"channels-last \(NHWC\)", r"inputs.permute\(0, 3, 1, 2\)")),
    ("images too small for the model's pooling", _call("gradient_norm", model=_vgg5()), InputError,
     (r"inputs of 8×8 \(shape \(4, 1, 8, 8\)\) are too small for the model",
      r"layer '12' \(AvgPool2d\(kernel_size=2", r"at 1×1 \(one example's input there has shape \(1, 32, 1, 1\)\)")),
    ("images smaller than the first kernel", _call("loss_gradient", model=nn.Sequential(
        nn.Conv2d(1, 2, 5), nn.Flatten(), nn.Linear(2, 3)), x=torch.rand(4, 1, 3, 3)), InputError,
     (r"inputs of 3×3", r"layer '0' \(Conv2d\(1, 2, kernel_size=\(5, 5\)", "too small for it")),
    ("NaN pixel, perturbation", _call("adversarial_perturbation", x=_nan(X)), InputError, ("inputs", "1 non-finite")),
    ("NaN pixel, deformation", _call("adversarial_deformation", x=_nan(X)), InputError, ("inputs", "non-finite")),
    ("NaN pixel, gradient norm", _call("gradient_norm", x=_nan(X)), InputError, ("inputs", "non-finite")),
    ("inf pixel, tangent", _call("tangent_propagation", x=_nan(X, math.inf)), InputError, ("inputs", "non-finite")),
    ("NaN pixel, loss gradient", _call("loss_gradient", x=_nan(X)), InputError, ("inputs", "non-finite")),
    ("NaN pixel, adversarial training", _call("adversarial_training", x=_nan(X)), InputError, ("non-finite",)),
    # --- constraints
    ("negative radius", lambda: rkhsreg.create_constraint("spectral_norm_projection", radius=-1), ConfigurationError,
     ("radius", "-1")),
    ("unknown projection", lambda: rkhsreg.create_constraint("spectral_norm_projection", projection="svd"),
     ConfigurationError, ("projection", "'svd'")),
    ("operator without input_shape", lambda: rkhsreg.create_constraint("spectral_norm_projection", method="operator"),
     ConfigurationError, ("input_shape=None",)),
    ("clip with operator", lambda: rkhsreg.create_constraint("spectral_norm_projection", method="operator",
                                                             input_shape=(1, 8, 8), projection="clip"),
     ConfigurationError, ("projection='clip'", "operator")),
    ("input_shape with a batch dimension", _project(_net(), method="operator", input_shape=(2, 1, 8, 8)), InputError,
     ("input_shape", r"\(2, 1, 8, 8\)")),
    ("input_shape of zeros", lambda: rkhsreg.create_constraint("spectral_norm_projection", method="operator",
                                                               input_shape=(1, 0, 8)),
     ConfigurationError, ("input_shape", r"\(1, 0, 8\)")),
    ("modules entry matching nothing", _project(_net(), modules=["head"]), InputError, ("modules", "'head'")),
    ("modules of a non-module type", lambda: rkhsreg.create_constraint("spectral_norm_projection", modules=[int]),
     ConfigurationError, ("modules",)),
    ("only BatchNorm layers", _project(nn.Sequential(nn.BatchNorm2d(3))), InputError,
     ("no nn.Linear or nn.Conv", "BatchNorm2d")),
    ("only ConvTranspose layers", _project(nn.Sequential(nn.ConvTranspose2d(3, 3, 3))), InputError,
     ("ConvTranspose2d",)),
    ("modules type matching no layer", _project(nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(),
                                                          nn.Linear(72, 3)), modules=nn.BatchNorm2d), InputError,
     ("modules entry 'BatchNorm2d' matches no Linear/Conv layer", "would project nothing", r"'0' \(Conv2d\)")),
    ("ConvTranspose next to a Linear", _project(nn.Sequential(nn.ConvTranspose2d(1, 2, 3), nn.Flatten(),
                                                              nn.Linear(200, 3)), radius=0.1), InputError,
     (r"'0' \(ConvTranspose2d\)", "cannot project", "modules=")),
    ("parametrizations.spectral_norm weight", _project(nn.Sequential(
        nn.Flatten(), torch.nn.utils.parametrizations.spectral_norm(nn.Linear(64, 3))), radius=0.1), InputError,
     ("layer '1'", "parametrizations.spectral_norm", "renormalises")),
    ("NaN weight, scale", _project(_nan_weight()), InputError, ("layer '4'", "non-finite")),
    ("NaN weight, clip", _project(_nan_weight(), projection="clip"), InputError, ("layer '4'", "non-finite")),
    ("negative epoch", lambda: rkhsreg.create_constraint("spectral_norm_projection", kappa=2.0).set_epoch(-1),
     ConfigurationError, ("epoch", "-1")),
    ("operator norm of a linear layer", lambda: __import__("rkhsreg.functional.spectral", fromlist=["x"])
     .conv_operator_norm(nn.Linear(2, 2), (2,)), InputError, ("Linear",)),
    ("operator input too small", _operator_norm(input_shape=(1, 2, 2)), InputError, ("input_shape", "receptive")),
    ("operator input channels", _operator_norm(input_shape=(3, 8, 8)), InputError, ("input_shape", "3 channels")),
    # --- evaluation
    ("negative epsilon in a sweep", _evaluate(epsilons=[-0.1]), ConfigurationError, ("epsilons", "-0.1")),
    ("empty epsilons", _evaluate(epsilons=[]), ConfigurationError, ("epsilons",)),
    ("unknown threat model", _evaluate(norm="l1"), ConfigurationError, ("norm", "'l1'")),
    ("bounds reversed", _evaluate(bounds=(1.0, 0.0)), ConfigurationError, ("bounds",)),
    ("zero batch size", _evaluate(batch_size=0), ConfigurationError, ("batch_size", "0")),
    ("labels as floats", _evaluate(data=(X, Y.float())), InputError, ("labels", "float")),
    ("labels of another length", _evaluate(data=(X, Y[:2])), InputError, ("labels",)),
    ("NaN pixel in a sweep", _evaluate(data=(_nan(X), Y)), InputError, ("inputs", "1 non-finite")),
    ("float64 inputs, float32 model, in a sweep", _evaluate(data=(X.double(), Y)), InputError,
     ("inputs have dtype torch.float64", "parameters torch.float32", r"inputs.to\(torch.float32\)")),
    ("float64 model, float32 inputs, in a sweep", _evaluate(model=_net().double().eval()), InputError,
     ("inputs have dtype torch.float32", "parameters torch.float64")),
    ("one image without its batch dimension, in a sweep", _evaluate(data=(X[0], Y[:1])), InputError,
     (r"shape \(1, 8, 8\) \(rank 3\)", r"\(N, C, H, W\) of rank 4", r"unsqueeze\(0\)")),
    ("channels-last images, in a sweep", _evaluate(model=_net(channels=3).eval(), data=(torch.rand(4, 8, 8, 3), Y)),
     InputError, (r"channels-last \(NHWC\)", r"permute\(0, 3, 1, 2\)")),
    ("images too small for the model, in a sweep", _evaluate(model=_vgg5().eval()), InputError,
     ("inputs of 8×8", "too small for the model", "layer '12'")),
    ("uint8 images in a sweep", _evaluate(data=((X * 255).to(torch.uint8), Y)), InputError, ("inputs", "uint8")),
    ("tuple output in a sweep", _evaluate(model=_TupleNet().eval()), InputError, ("tuple", "SelectLogits")),
    ("n_examples above the data's size", _evaluate(n_examples=100), ParameterError,
     ("evaluate_robustness: n_examples=100 is out of range: data holds 4 examples", "n_examples <= 4")),
    ("n_examples above a DataLoader's size", _evaluate(data=torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(X, Y), batch_size=3), n_examples=5), ParameterError,
     ("n_examples=5 is out of range: data holds 4 examples",)),
    ("a DataLoader whose batches have images of different sizes", _evaluate(data=torch.utils.data.DataLoader(
        _MixedSizes(), batch_size=2)), InputError,
     (r"batch 1 holds inputs of shape \(1, 10, 10\), batch 0 of shape \(1, 8, 8\)", "resize the images")),
    ("a Dataset of images of different sizes", _evaluate(data=_MixedSizes()), InputError,
     (r"example 2 holds inputs of shape \(1, 10, 10\), example 0 of shape \(1, 8, 8\)",)),
    ("n_examples above the data's size, certificate", _certified(epsilons=[0.1], n_examples=9), ParameterError,
     ("certified_accuracy: n_examples=9", "data holds 4 examples")),
    ("deformation sizes negative", _deformations(sizes=[-1.0]), ConfigurationError, ("sizes", "-1.0")),
    ("an attack listed twice", lambda: AttackSettings(attacks=["default", "default"]), ParameterError,
     ("AttackSettings: attacks=", "lists 'default' more than once")),
    ("an attack listed next to 'default', which runs it", lambda: AttackSettings(attacks=["default", "apgd-ce"]),
     ParameterError, ("lists 'apgd-ce' next to 'default', which already runs it", "drop 'apgd-ce'")),
    ("an attack object listed twice", lambda: AttackSettings(attacks=[rkhsreg.create_attack("square")] * 2),
     ParameterError, ("lists 'square' more than once",)),
    ("deformation samples negative", lambda: DeformationSearch(samples=-1), ConfigurationError, ("samples", "-1")),
    ("certified accuracy, negative lipschitz", _certified(epsilons=[0.1], lipschitz=-2.0), ConfigurationError,
     ("lipschitz", "-2.0")),
    ("random deformation with p > 1", _deformation_aug(p=1.5), ConfigurationError, ("p", "1.5")),
    ("one score per example, in a sweep", _evaluate(model=_net(classes=1).eval(), data=(X, torch.zeros_like(Y))),
     InputError, ("evaluate_robustness: the model returns K = 1 score per example", "argmax of its scores",
                  r"SelectLogits\(model, select=lambda s: torch.cat\(\[-s, s\], 1\) / 2\)")),
    ("one score per example, deformations", _deformations(model=_net(classes=1).eval(), data=(X, torch.zeros_like(Y)),
                                                          sizes=[0.5]), InputError,
     ("evaluate_deformations: the model returns K = 1 score", "SelectLogits")),
    ("one score per example, certified radii", _certified_radii(model=_net(classes=1).eval(), labels=torch.zeros_like(Y)),
     InputError, ("certified_radii: the model returns K = 1 score", "SelectLogits")),
    ("a model returning its argmax, in a sweep", _evaluate(model=_Argmax().eval()), InputError,
     ("model output has dtype torch.int64", r"not predicted classes \(an argmax\)", "return the last layer's output")),
    ("labels beyond the model's classes, certified radii", _certified_radii(labels=Y + 5), InputError,
     (r"labels contains class \d, but the model returns 3 scores per example", r"\[0, 2\]")),
    ("labels beyond the model's classes, deformations", _deformations(data=(X, Y + 5), sizes=[0.5]), InputError,
     (r"labels contains class \d, but the model returns 3 scores",)),
    ("labels beyond the model's classes, in a sweep", _evaluate(data=(X, Y + 5)), InputError,
     (r"labels contains class \d, but the model returns 3 scores",)),
    ("certified accuracy, a Lipschitz constant below the model's", _certified(epsilons=[0.1], lipschitz=1e-3),
     ParameterError, (r"lipschitz=0\.001 is below the model's ℓ2 Lipschitz constant", "input gradient",
                      "lower bound every valid Lipschitz constant exceeds", "lipschitz=None")),
    ("certified radii, a Lipschitz constant below the model's", _certified_radii(lipschitz=1e-3), ParameterError,
     (r"lipschitz=0\.001 is below",)),
    # --- CLI model loading and data
    ("model spec without a colon", _build_model("mypkg.nets"), ConfigurationError, ("mypkg.nets",)),
    ("model kwargs a JSON list", _build_model("rkhsreg.models:mnist_vgg5", "[8]"), ConfigurationError,
     ("model_kwargs", r"\[8\]", "JSON object")),
    ("model kwargs bad JSON", _build_model("rkhsreg.models:mnist_vgg5", "{width: 8}"), ConfigurationError,
     ("model_kwargs", "not valid JSON")),
    ("model kwargs unknown keyword", _build_model("rkhsreg.models:mnist_vgg5", '{"depth": 3}'), ConfigurationError,
     ("depth",)),
    ("unknown data set", _load_dataset("svhn"), ConfigurationError, ("svhn",)),
    ("unknown split", _load_dataset("mnist", split="val"), ConfigurationError, ("split", "'val'")),
    ("image folder missing", _load_dataset("imagefolder:/nonexistent/folder"), InputError, ("/nonexistent/folder",)),
]


@pytest.mark.parametrize("call, error, patterns", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gets_a_clear_error(call, error, patterns):
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    for pattern in patterns:
        assert pytest.importorskip("re").search(pattern, message), f"{pattern!r} not in: {message}"


@pytest.mark.parametrize("dtype", [torch.int32, torch.int16, torch.uint8])
def test_integer_labels_of_any_dtype_are_class_indices(dtype):
    """int32 labels (numpy, many data sets) are class indices too: converted, never a raw cross-entropy error."""
    expected = rkhsreg.create_penalty("loss_gradient")(_net(), X, Y)
    assert torch.equal(rkhsreg.create_penalty("loss_gradient")(_net(), X, Y.to(dtype)), expected)
    assert rkhsreg.create_penalty("adversarial_perturbation", steps=1)(_net(), X, Y.to(dtype)) >= 0
    assert _evaluate(data=(X, Y.to(dtype)))().clean_accuracy == _evaluate()().clean_accuracy


def test_the_catalogue_is_large_and_its_ids_distinct():
    assert len(CASES) >= 60
    assert len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("name", rkhsreg.list_penalties())
def test_a_diverged_model_is_refused_by_every_penalty(name):
    """The policy for non-finite model outputs and weights: an InputError, never a finite (or silent NaN) value.

    A NaN weight in front of a dead ReLU unit leaves the input gradients finite, so gradient-based penalties
    would return a finite number from a model whose output is NaN; the output check catches it.
    """
    with pytest.raises(InputError, match="non-finite"):
        _call(name, model=_nan_weight())()


def test_a_bare_timm_name_is_refused_with_the_one_spelling():
    pytest.importorskip("pytorch_lightning")
    from rkhsreg.lightning import RegularizedClassifier

    with pytest.raises(ConfigurationError, match="model='resnet18'.*did you mean 'timm:resnet18'"):
        RegularizedClassifier("resnet18", num_classes=10)


@pytest.mark.parametrize("probe, lower, match", [
    (torch.rand(4, 8, 8), {"gradient": {}}, r"inputs have shape \(4, 8, 8\) \(rank 3\)"),
    (torch.full((4, 1, 8, 8), math.nan), {"gradient": {}}, r"inputs contains 256 non-finite value"),
    ((X, torch.tensor([0, 1, 2, 7])), {"tangent_propagation": {}}, r"targets contains class 7"),
])
def test_a_monitor_probe_that_a_bound_refuses_is_named(probe, lower, match):
    """RKHSNormMonitor's lower bounds run on its probe: their error says it is the monitor's, which bound, which probe."""
    pytest.importorskip("pytorch_lightning")
    from rkhsreg.lightning import RKHSNormMonitor

    label = next(iter(lower))
    bounds = {label: rkhsreg.create_penalty("gradient_norm" if label == "gradient" else label)}
    monitor = RKHSNormMonitor(probe=probe, lower_bounds=bounds, upper_bounds=())
    with pytest.raises(InputError) as info:
        monitor.measure(_net())
    message = str(info.value)
    assert message.startswith(f"RKHSNormMonitor: lower bound {label!r} (")
    assert "failed on the probe given as probe= (inputs of shape" in message
    assert pytest.importorskip("re").search(match, message), message
