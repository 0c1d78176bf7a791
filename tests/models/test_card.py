"""The model card the pages show (cp2image.models.card): front matter, figures, plain facts."""
from __future__ import annotations

import io

from PIL import Image

from cp2image.models.card import card_images, card_sections, figure_png, model_facts
from cp2image.models.testing import tiny_model


def test_card_front_matter_is_split_from_the_body():
    meta, body = card_sections("---\nlicense: mit\ntags: [a, b]\n---\n# Title\ntext\n")
    assert meta == {"license": "mit", "tags": ["a", "b"]} and body == "# Title\ntext\n"
    assert card_sections("# Plain\n") == ({}, "# Plain\n")


def test_model_facts_count_parameters_of_a_tiny_model():
    model = tiny_model(["f1", "f2", "f3"], 0)
    facts = dict(model_facts(model).itertuples(index=False))
    assert facts["input features"] == "3"
    assert facts["parameters"] == f"{sum(p.numel() for p in model.parameters()):,}"
    assert facts["provenance: trained"] == "False"


def test_card_images_inside_the_repo_are_kept_others_become_alt_text(tmp_path):
    model_dir = tmp_path / "assets" / "models" / "x"
    (tmp_path / "docs").mkdir()
    fig = tmp_path / "docs" / "fig.png"
    fig.write_bytes(b"\x89PNG\r\n\x1a\n")
    body = ("Intro\n![grid](../../../docs/missing.png)\nmid\n![secret](/etc/passwd)\n"
            "![here](../../../docs/fig.png)\nend")
    parts = card_images(body, model_dir, allowed_root=tmp_path)
    assert [k for k, _ in parts] == ["text", "text", "text", "text", "image", "caption", "text"]
    assert parts[1][1] == "*[figure: grid]*" and parts[3][1] == "*[figure: secret]*"
    assert parts[4][1] == fig and parts[5][1] == "here"


def test_wide_card_figures_are_shrunk_once_to_the_page_width(tmp_path):
    Image.new("RGB", (2000, 500), (10, 20, 30)).save(tmp_path / "wide.png")
    Image.new("RGB", (300, 100)).save(tmp_path / "small.png")
    with Image.open(io.BytesIO(figure_png(tmp_path / "wide.png", max_width=1000))) as shrunk:
        assert shrunk.size == (1000, 250) and shrunk.getpixel((500, 100)) == (10, 20, 30)
    with Image.open(io.BytesIO(figure_png(tmp_path / "small.png", max_width=1000))) as kept:
        assert kept.size == (300, 100)
