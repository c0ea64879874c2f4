"""evaluate_deformations: monotone curves, budgets respected, no side effects, argument errors."""

from __future__ import annotations

import pytest
import torch

from rkhsreg import ConfigurationError, InputError
from rkhsreg.evaluation import DeformationResult, evaluate_deformations
from rkhsreg.evaluation.settings import DeformationBudget, DeformationSearch
from tests._evaluation_helpers import quadrant_data, trained_cnn
from tests.conftest import assert_same_snapshot, snapshot


@pytest.fixture(scope="module")
def cnn():
    return trained_cnn()


def test_curves_are_monotone_and_ordered(cnn):
    x, y = quadrant_data(24, seed=2)
    result = evaluate_deformations(cnn, (x, y), sizes=[2, 0.5, 1], budget=DeformationBudget(max_displacement=1.0),
                                   search=DeformationSearch(samples=3, steps=4), batch_size=10)
    assert isinstance(result, DeformationResult)
    assert result.sizes == [0.5, 1.0, 2.0] and result.max_gradient == pytest.approx([0.15, 0.3, 0.6])
    rand, adv = result.random_accuracy, result.adversarial_accuracy
    assert rand == sorted(rand, reverse=True) and adv == sorted(adv, reverse=True)
    assert all(a <= r <= result.clean_accuracy for a, r in zip(adv, rand))
    random = torch.tensor([k == "random" for k in result.kinds])
    assert int(random.sum()) == 24 * 3 * 3
    for k, (a, b) in enumerate(zip(result.max_displacement, result.max_gradient)):
        mask = result.size_index == k
        assert float(result.jacobian_norms[mask].max()) <= b * (1 + 1e-4)
        assert float(result.displacement_norms[mask].max()) <= a * (1 + 1e-4)
    assert torch.all(result.ratios >= 0)
    summary = result.ratio_summary()
    assert [row["size"] for row in summary] == result.sizes
    assert summary[0]["mean_ratio"] < summary[-1]["mean_ratio"]  # larger deformations move the logits more


def test_no_side_effects_and_reproducible(cnn, tmp_path):
    x, y = quadrant_data(12, seed=3)
    cnn.train()
    before = snapshot(cnn)
    a = evaluate_deformations(cnn, (x, y), sizes=[1.0], search=DeformationSearch(samples=2, steps=3), seed=5)
    assert_same_snapshot(before, snapshot(cnn))
    b = evaluate_deformations(cnn, (x, y), sizes=[1.0], search=DeformationSearch(samples=2, steps=3), seed=5)
    assert torch.equal(a.ratios, b.ratios)
    c = evaluate_deformations(cnn, (x, y), sizes=[1.0], search=DeformationSearch(samples=2, adversarial=False), seed=6)
    assert c.adversarial_accuracy is None and set(c.kinds) == {"random"}
    assert "size,max_displacement" in a.to_csv(tmp_path / "d.csv").read_text()
    assert "stability" in a.to_dict() and "samples" in a.to_dict(per_sample=True)
    assert "random" in a.table()


@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG"), (".pdf", b"%PDF"), (".svg", b"<?xml")])
def test_plot_writes_the_format_of_its_extension_and_refuses_others(tmp_path, suffix, magic):
    """DeformationResult.plot follows RobustnessResult.plot: the format from the extension, .jpg refused."""
    pytest.importorskip("matplotlib")
    result = DeformationResult(sizes=[1.0], max_displacement=[1.0], max_gradient=[0.3], clean_accuracy=1.0,
                               random_accuracy=[0.5], adversarial_accuracy=[0.25],
                               jacobian_norms=torch.tensor([0.1]), displacement_norms=torch.tensor([0.2]),
                               ratios=torch.tensor([0.3]), size_index=torch.tensor([0]), kinds=["random"], n_examples=2)
    result.plot(tmp_path / f"d{suffix}")
    assert (tmp_path / f"d{suffix}").read_bytes()[:len(magic)] == magic
    with pytest.raises(ConfigurationError, match=r"path='.*d\.jpg'.*\.png, \.pdf, \.svg"):
        result.plot(str(tmp_path / "d.jpg"))
    assert not (tmp_path / "d.jpg").exists()


@pytest.mark.parametrize("kwargs, error, match", [
    ({"sizes": [0.0]}, InputError, "sizes holds only 0"),
    ({"sizes": [-1.0]}, ConfigurationError, "sizes\\[0\\]=-1.0 is out of range"),
    ({"budget": {"max_gradient": 0.3}}, ConfigurationError, r"budget=.* is not allowed: it is a dict \(allowed: None or a DeformationBudget\(...\)\)"),
    ({"search": 8}, ConfigurationError, r"search=8 is not allowed: it is an int \(allowed: None or a DeformationSearch\(...\)\)"),
])
def test_bad_arguments(cnn, kwargs, error, match):
    x, y = quadrant_data(4)
    with pytest.raises(error, match=match):
        evaluate_deformations(cnn, (x, y), **kwargs)


@pytest.mark.parametrize("kind, kwargs, match", [
    (DeformationBudget, {"max_gradient": 0.0}, "max_gradient=0.0 is out of range"),
    (DeformationBudget, {"max_displacement": -1.0}, "max_displacement=-1.0 is out of range"),
    (DeformationBudget, {"grid_size": 0}, "grid_size=0 is out of range"),
    (DeformationBudget, {"padding_mode": "wrap"}, "padding_mode='wrap' is not allowed"),
    (DeformationSearch, {"samples": -1}, "samples=-1 is out of range"),
    (DeformationSearch, {"steps": 0}, "steps=0 is out of range"),
    (DeformationSearch, {"step_size": 0.0}, "step_size=0.0 is out of range"),
    (DeformationSearch, {"adversarial": 1}, "adversarial=1 is not allowed"),
])
def test_bad_settings_name_the_field_when_built(kind, kwargs, match):
    with pytest.raises(ConfigurationError, match=match):
        kind(**kwargs)


def test_non_image_inputs_refused(cnn):
    with pytest.raises(InputError, match="deformations need images"):
        evaluate_deformations(cnn, (torch.rand(4, 64), torch.zeros(4, dtype=torch.long)))
