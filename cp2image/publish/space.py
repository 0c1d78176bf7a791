"""`build_space`: a folder ready to push as a Hugging Face Space running the cp2image app.

The folder has the repository's own layout (so the Dockerfile and `streamlit run
app/Home.py` work unchanged): README.md with the Space's YAML front matter (Docker or
Streamlit SDK, the app port), runtime requirements, `app/`, `pages/`, `cp2image/`,
`.streamlit/`, the bundled dataset, and either the bundled weights or, with `model=`,
a Hub repo id the Space fetches at start-up. `assets/hosting.json` switches the Space
into hosted mode (`cp2image.hosting`). Files over 10 MB get per-file Git LFS rules in
`.gitattributes` (the Hub refuses larger files outside LFS), binary formats get
pattern rules.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from cp2image.assets import BUNDLED_DATASET_NAME, assets_dir

SDKS = ("docker", "streamlit")
APP_PORT = 8501
LFS_THRESHOLD_BYTES = 10 * 1024 * 1024
LFS_PATTERNS = ("*.safetensors", "*.npy", "*.npz", "*.parquet", "*.pt", "*.bin", "*.png", "*.pdf")
DEV_ONLY = ("-e", "pytest", "hypothesis", "playwright")  # requirement lines a server does not need
CODE_DIRS = ("cp2image", "app", "pages", ".streamlit")
_SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", "*.egg-info", ".*.tmp*")


@dataclass(frozen=True)
class SpaceConfig:
    out: Path  # the folder to write (must not exist or be empty)
    sdk: str = "docker"  # "docker" (the repository's Dockerfile) or "streamlit" (Hugging Face's Streamlit SDK)
    model: str | None = None  # Hub repo id[@revision] served instead of the bundled weights
    title: str = "cp2image"
    license: str = "mit"

    def __post_init__(self) -> None:
        if self.sdk not in SDKS:
            raise ValueError(f"sdk must be one of {SDKS}, not {self.sdk!r}")
        if self.model is not None:
            from cp2image.models.hub import ModelKind, ModelRef

            repo_id, _, revision = self.model.partition("@")
            if Path(self.model).exists() or ModelRef.hub(repo_id, revision or None).kind is not ModelKind.HUB:
                raise ValueError(f"--model takes a Hub repo id such as 'my-lab/cp2image-sim', not {self.model!r}")


def source_root() -> Path:
    """The checkout the Space is built from (the folder holding cp2image/, app/, pages/)."""
    root = Path(__file__).resolve().parents[2]
    missing = [name for name in ("app", "pages", "requirements.txt", "pyproject.toml") if not (root / name).exists()]
    if missing:
        raise FileNotFoundError(f"`cp2image space build` needs a source checkout; {', '.join(missing)} not found")
    return root


def runtime_requirements(root: Path, sdk: str) -> str:
    """requirements.txt without the test tools; the Streamlit SDK also gets the CPU torch index and the package."""
    lines = [line for line in (root / "requirements.txt").read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#")
             and not any(line.strip().startswith(p) for p in DEV_ONLY)]
    header = ["# Runtime requirements written by `cp2image space build`."]
    if sdk == "streamlit":  # the Docker image installs CPU torch itself; here pip must find the CPU wheel
        header.append("--extra-index-url https://download.pytorch.org/whl/cpu")
        lines.append(".  # the cp2image package in this folder")
    return "\n".join(header + lines) + "\n"


def space_readme(config: SpaceConfig) -> str:
    from huggingface_hub import SpaceCard, SpaceCardData

    if config.sdk == "docker":
        data = SpaceCardData(title=config.title, sdk="docker", app_port=APP_PORT, license=config.license,
                             models=[config.model.split("@")[0]] if config.model else None,
                             tags=["cell-painting", "cellprofiler", "microscopy", "cp2image"])
    else:
        import streamlit

        data = SpaceCardData(title=config.title, sdk="streamlit", sdk_version=streamlit.__version__,
                             app_file="app/Home.py", app_port=APP_PORT, python_version="3.11", license=config.license,
                             models=[config.model.split("@")[0]] if config.model else None,
                             tags=["cell-painting", "cellprofiler", "microscopy", "cp2image"])
    weights = f"weights from the Hub repo `{config.model}`" if config.model else "the bundled weights"
    body = f"""
# cp2image — CellProfiler profiles to single-cell images

Push a CellProfiler feature up or down and see the cell change; walk from DMSO towards a drug in
PCA; step a control cell towards a mechanism of action; read which features the model preserves.
Runs on CPU with {weights} and the bundled *simulated* BBBC021-like screen, in hosted mode
(read-only files, allowlisted models and datasets, one torch thread per request).

Built with `cp2image space build` ({config.sdk} SDK).
"""
    return str(SpaceCard.from_template(data, template_str="---\n{{ card_data }}\n---\n" + body))


def gitattributes(out: Path) -> str:
    """LFS rules: binary formats by pattern, and every file over 10 MB by name."""
    lines = [f"{pattern} filter=lfs diff=lfs merge=lfs -text" for pattern in LFS_PATTERNS]
    for path in sorted(out.rglob("*")):
        if path.is_file() and path.stat().st_size > LFS_THRESHOLD_BYTES:
            lines.append(f"{path.relative_to(out).as_posix()} filter=lfs diff=lfs merge=lfs -text")
    return "\n".join(lines) + "\n"


def _dockerfile(root: Path, config: SpaceConfig) -> str:
    text = (root / "Dockerfile").read_text()
    if config.model:
        if "HF_HUB_OFFLINE=1" not in text:
            raise ValueError("the Dockerfile no longer sets HF_HUB_OFFLINE=1; update cp2image.publish.space")
        text = text.replace("HF_HUB_OFFLINE=1", "HF_HUB_OFFLINE=0")  # the Space fetches its weights from the Hub
    return text


def build_space(config: SpaceConfig) -> list[Path]:
    """Write the Space folder; returns the files written (relative to `config.out`)."""
    root = source_root()
    out = config.out
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty; choose a new folder")
    tmp = out.with_name(f".{out.name}.building")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        for name in CODE_DIRS:
            shutil.copytree(root / name, tmp / name, ignore=_SKIP)
        shutil.copy2(root / "pyproject.toml", tmp / "pyproject.toml")
        assets = assets_dir()
        dataset = assets / "datasets" / BUNDLED_DATASET_NAME
        if not (dataset / "dataset.json").is_file():
            raise FileNotFoundError("the bundled dataset is missing from the assets folder; build it first")
        shutil.copytree(dataset, tmp / "assets" / "datasets" / BUNDLED_DATASET_NAME, ignore=_SKIP)
        if config.model is None:
            shutil.copytree(assets / "models", tmp / "assets" / "models", ignore=_SKIP)
        settings = {"CP2IMAGE_HOSTED": "1"}
        if config.model:
            settings.update(CP2IMAGE_MODEL=config.model, CP2IMAGE_ALLOWED_MODELS=config.model)
        (tmp / "assets" / "hosting.json").write_text(json.dumps(settings, indent=2) + "\n")
        (tmp / "requirements.txt").write_text(runtime_requirements(root, config.sdk))
        (tmp / "README.md").write_text(space_readme(config), encoding="utf-8")
        if config.sdk == "docker":
            (tmp / "Dockerfile").write_text(_dockerfile(root, config))
            shutil.copy2(root / ".dockerignore", tmp / ".dockerignore")
        (tmp / ".gitattributes").write_text(gitattributes(tmp))
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
