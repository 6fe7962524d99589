"""The worked example specs in examples/ stay valid as the schema changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from defection.explore.design import design
from defection.explore.spec import load_spec

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.toml"))


def test_examples_exist() -> None:
    assert {p.name for p in EXAMPLES} >= {"package-sweep.toml", "sensitivity.toml", "cheapest-package.toml"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_spec_is_valid_and_has_a_design(path: Path) -> None:
    spec, _ = load_spec(path)
    assert spec.uncertainties and spec.levers and spec.outcomes
    points = design(spec)
    assert len(points) >= spec.experiment.samples
    assert list(points.columns) == ["experiment", *(f.path for f in spec.factors)]
    for f in spec.factors:  # every value inside the factor's range
        assert points[f.path].between(f.low, f.high).all(), f.path
