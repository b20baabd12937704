from __future__ import annotations

import io

import pytest
from PIL import Image

from devtools.demo_assets import DEMO_IMAGES


@pytest.mark.parametrize("asset", DEMO_IMAGES, ids=lambda a: a.filename)
def test_each_demo_image_is_a_png_of_its_announced_size(asset):
    image = Image.open(io.BytesIO(asset.draw()))
    assert image.format == "PNG"
    assert image.size == asset.size


@pytest.mark.parametrize("asset", DEMO_IMAGES, ids=lambda a: a.filename)
def test_each_demo_image_is_drawn_not_blank(asset):
    image = Image.open(io.BytesIO(asset.draw())).convert("RGB")
    # Text, a logo and UI shapes give many colours; a placeholder fill gives one or two.
    colours = image.getcolors(maxcolors=1_000_000)
    assert len(colours) > 50


def test_demo_images_are_drawn_the_same_every_time():
    assert [a.draw() for a in DEMO_IMAGES] == [a.draw() for a in DEMO_IMAGES]


def test_there_is_an_image_for_each_image_kind_of_creative():
    assert {a.kind for a in DEMO_IMAGES} == {"banner", "logo", "screenshot"}
    assert {a.size for a in DEMO_IMAGES if a.kind == "banner"} == {(728, 90), (300, 250)}
