"""trigger.scan: a planted checkerboard backdoor is caught; an honest model passes."""

from __future__ import annotations

import json

import pytest
import torch
from kp_robust_helpers import FixedModel, PlantedTrigger, has_checkerboard, natural_image

from pytest_kpmodel.robustness import trigger
from pytest_kpmodel.robustness.trigger import Trigger

H, W = 96, 128


@pytest.fixture(scope="module")
def images():
    return [natural_image(H, W, seed=s) for s in range(3)]


def test_patterns_render_where_expected(images):
    img = images[0]
    for pattern in trigger.PATTERNS:
        t = Trigger(pattern, size=0.2, x=0.25, y=0.5, cell=2, colour=(1.0, 0.0, 0.0), seed=3)
        out = t.apply([img])[0]
        top, left, side = t.rect(H, W)
        changed = torch.nonzero((out != img).any(0), as_tuple=True)
        assert changed[0].min() >= top and changed[0].max() < top + side
        assert changed[1].min() >= left and changed[1].max() < left + side
        assert side == round(0.2 * H)
    assert has_checkerboard(Trigger("checkerboard", 0.1).apply([img])[0])
    assert not has_checkerboard(img)
    assert not has_checkerboard(Trigger("noise", 0.2, seed=1).apply([img])[0])


def test_planted_vanishing_trigger_is_caught(images):
    model = PlantedTrigger(FixedModel(), "vanish")
    clean = model.predict(images)
    r = trigger.scan(model, images, clean, max_examples=10)
    assert r.found and not r.passed
    assert r.effect.vanished == 1.0 and r.effect.num_away > 0
    assert has_checkerboard(r.trigger.apply(images[:1])[0])
    assert "TRIGGER FOUND" in str(r) and repr(r.trigger) in str(r)
    json.dumps(r.to_dict())


def test_planted_phantom_trigger_is_caught(images):
    model = PlantedTrigger(FixedModel(), "appear")
    r = trigger.scan(model, images, model.predict(images), max_examples=10)
    assert r.found and r.effect.num_appeared > 0 and r.effect.vanished == 0.0


def test_search_finds_and_shrinks_a_trigger_without_the_corner_examples(images):
    model = PlantedTrigger(FixedModel(), "vanish")
    r = trigger.scan(model, images, model.predict(images), explicit=False, max_examples=40,
                     max_shrink_evaluations=40)  # fmt: skip
    assert r.found, str(r)
    # shrunk towards the smallest patch of the simplest family that still fires
    assert r.trigger.pattern == "checkerboard"
    assert r.trigger.size <= 0.15
    assert r.evaluations <= 40 + 40


def test_an_honest_model_passes(images):
    model = FixedModel()
    r = trigger.scan(model, images, model.predict(images), max_examples=15)
    assert not r.found and r.passed
    assert r.effect.strength == 0.0
    assert r.evaluations <= len(trigger.PATTERNS) + 15
    assert model.calls == len(images) * (1 + r.evaluations)
    assert "no trigger found" in str(r)


def test_tiny_rcnn_scan_is_bounded(tiny_model):
    imgs = [natural_image(64, 64, seed=1)]
    r = trigger.scan(tiny_model, imgs, tiny_model.predict(imgs), score_threshold=0.0,
                     max_examples=3, max_shrink_evaluations=3, patterns=("checkerboard", "noise"))  # fmt: skip
    assert r.evaluations <= 2 + 3 + 3
    assert r.trigger is not None


def test_bad_arguments_are_named(images):
    with pytest.raises(ValueError, match="unknown trigger pattern 'qr'"):
        trigger.scan(FixedModel(), images, FixedModel().predict(images), patterns=("qr",))
    with pytest.raises(ValueError, match="clean predictions for 3 images"):
        trigger.scan(FixedModel(), images, [])
