"""What a stranger can type into the hosted app's model field: only a bundled model's
name or a well-formed Hub id gets through, never a path on the server."""
from __future__ import annotations

import string
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from reliability_helpers import PROPERTY

from cp2image.app_support.model_spec import HUB_ID_PATTERN, bundled_model_names, parse_model_choice
from cp2image.models.hub import load_model

ATTEMPTS = [
    "../../etc/passwd", "/etc/passwd", "~/.ssh/id_rsa", "file:///etc/passwd", "http://evil.example/model",
    "C:\\Windows\\system32", "org/../../etc", "org/name/../../x", "./assets/models/cp2image-sim",
    "cp2image/models", "org/name@../../x", "org/na me", "org//name", "org/name/extra", "org/-name",
    "org/name.git", "org--x/name", "\x00org/name", "оrg/name",  # Cyrillic 'о'
    "a" * 201, "org/" + "n" * 97,
]


@pytest.mark.parametrize("typed", ATTEMPTS)
def test_paths_urls_and_malformed_ids_are_refused(typed, monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parents[2])  # the server's working directory
    with pytest.raises(ValueError):
        parse_model_choice(typed)


@PROPERTY
@given(typed=st.text(alphabet=string.printable + "é/\\.~-_@:", max_size=60))
def test_whatever_is_typed_only_a_bundled_name_or_a_hub_id_gets_through(typed):
    try:
        choice = parse_model_choice(typed)
    except ValueError:
        return
    if choice.kind == "default":
        assert choice.spec is None and not typed.strip()
    elif choice.kind == "bundled":
        assert choice.spec.split(":", 1)[1] in bundled_model_names()
    else:
        assert choice.kind == "hub" and HUB_ID_PATTERN.fullmatch(choice.spec)
        assert ".." not in choice.spec and not choice.spec.startswith(("/", "."))
        assert not Path(choice.spec).exists()


@pytest.mark.parametrize("name", ["../datasets/bbbc021-sim", "../../cp2image", "/etc", ".."])
def test_bundled_names_cannot_leave_the_models_folder(name):
    with pytest.raises(ValueError, match=r"not a bundled model name"):
        load_model(f"bundled:{name}")
