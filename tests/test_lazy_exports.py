"""cp2image.lazy: the model and evaluation packages import their parts (torch, scikit-learn) only when a name is used."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest


def _run(code: str) -> dict:
    """What a fresh interpreter prints (one JSON object) after running `code`."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_models_package_imports_torch_only_when_a_torch_backed_name_is_touched():
    facts = _run(
        "import json, sys\n"
        "import cp2image.models as m\n"
        "after_import = 'torch' in sys.modules\n"
        "listed = 'CP2Image' in dir(m) and 'Discriminator' in dir(m)\n"
        "after_dir = 'torch' in sys.modules\n"
        "cls = m.CP2Image\n"
        "print(json.dumps({'after_import': after_import, 'listed': listed, 'after_dir': after_dir,\n"
        "                  'after_use': 'torch' in sys.modules, 'home': cls.__module__,\n"
        "                  'kept': m.__dict__.get('CP2Image') is cls}))")
    assert facts == {"after_import": False, "listed": True, "after_dir": False, "after_use": True,
                     "home": "cp2image.models.cp2image", "kept": True}


def test_the_evaluation_package_imports_scikit_learn_only_on_use_and_kid_stays_the_function():
    facts = _run(
        "import json, sys\n"
        "import cp2image.evaluation as e\n"
        "after_import = [m for m in ('sklearn', 'torch') if m in sys.modules]\n"
        "import cp2image.evaluation.kid\n"  # the submodule of the same name does not replace the function
        "print(json.dumps({'after_import': after_import, 'kid_is_function': callable(e.kid) and e.kid.__name__ == 'kid',\n"
        "                  'fidelity': e.moa_fidelity.__module__, 'sklearn_after_use': 'sklearn' in sys.modules}))")
    assert facts == {"after_import": [], "kid_is_function": True, "fidelity": "cp2image.evaluation.moa_fidelity",
                     "sklearn_after_use": True}


def test_an_unknown_name_is_an_attribute_error_naming_the_package():
    import cp2image.models

    with pytest.raises(AttributeError, match="module 'cp2image.models' has no attribute 'Nope'"):
        cp2image.models.Nope  # noqa: B018
    assert not hasattr(cp2image.models, "Nope")
