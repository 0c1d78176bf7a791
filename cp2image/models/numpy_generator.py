"""A saved CP2Image generator evaluated with NumPy alone, for the app's Home page.

Why: Home shows one generated cell, and importing torch costs ~1.2 CPU s (863 modules, its
C++ libraries) of the ~3.2 CPU s a fresh server spent before Home was fully drawn. Evaluating the
same saved weights with NumPy lets Home draw the example without torch; the server imports
torch after Home is drawn, for the pages that train, sweep and measure (`app/warmup.py`).

It reads the same files as `CP2Image.from_pretrained` (config.json, model.safetensors with its
tensor digest checked) and computes the generator's inference function: dense layer, batch norms
with their running statistics, the up-sampling conv blocks, sigmoid, `round(255 × x)`. It refuses
(`LeanUnsupported`) any folder whose tensors are not exactly the ones that architecture has, so
a changed architecture falls back to the torch model instead of drawing something else.
`tests/models/test_numpy_generator.py` checks its images against the torch model's pixel for pixel
(±1 grey level for float round-off) on both bundled models and a random one.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cp2image.channels import CHANNELS, CROP_SIZE
from cp2image.models.padding import PADDING_MODES

CONFIG_FILE = "config.json"  # the names the Hub mixin saves under (cp2image.models.hub_io)
WEIGHTS_FILE = "model.safetensors"
DIGEST_KEY = "cp2image_tensor_sha256"  # as cp2image.models.weights writes it
LEAKY_SLOPE = 0.2  # cp2image.models.blocks.LEAKY_SLOPE
BATCH_NORM_EPS = 1e-5  # torch.nn.BatchNorm2d's default, which the generator uses
_TORCH_DTYPE = {np.dtype(np.float32): "torch.float32", np.dtype(np.float64): "torch.float64",
                np.dtype(np.int64): "torch.int64"}  # how weights.tensor_digest names dtypes


class LeanUnsupported(ValueError):
    """The folder is not a CP2Image generator this module can evaluate (use the torch model)."""


def tensor_digest(tensors: dict[str, np.ndarray]) -> str:
    """`cp2image.models.weights.tensor_digest` over NumPy arrays (same names, dtype words, shapes, bytes)."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        array = np.asarray(tensors[name])  # not ascontiguousarray: it makes a 0-d tensor 1-d
        if array.dtype not in _TORCH_DTYPE:
            raise LeanUnsupported(f"tensor {name} has dtype {array.dtype}")
        digest.update(f"{name}|{_TORCH_DTYPE[array.dtype]}|{tuple(array.shape)}|".encode())
        digest.update(array.tobytes(order="C"))
    return digest.hexdigest()


def _upsample_sizes(image_size: int, n_blocks: int) -> list[int]:
    sizes = [int(image_size)]
    for _ in range(n_blocks):
        sizes.insert(0, math.ceil(sizes[0] / 2))
    return sizes


def _expected_shapes(config: dict[str, Any]) -> tuple[dict[str, tuple[int, ...]], list[int], list[int]]:
    """Every tensor the generator of `config` saves, with its shape; and its channel counts and sizes."""
    mults = list(config.get("generator_channel_mults", [1.0, 2.0, 2.0, 1.0, 0.5]))
    base, k = int(config.get("base_filters", 32)), int(config.get("kernel_size", 5))
    channels = [max(1, int(round(base * m))) for m in mults]
    n_blocks, image_size = len(channels) - 1, int(config.get("image_size", CROP_SIZE))
    if n_blocks < 1 or image_size < 2 ** n_blocks:  # the torch Generator refuses these too
        raise ValueError(f"{n_blocks} blocks cannot draw {image_size} px images")
    sizes = _upsample_sizes(image_size, n_blocks)
    p, out = len(config["feature_names"]), len(config.get("channels", CHANNELS))
    norm = bool(config.get("batch_norm", True))
    shapes: dict[str, tuple[int, ...]] = {
        "generator.dense.weight": (channels[0] * sizes[0] ** 2, p), "generator.dense.bias": (channels[0] * sizes[0] ** 2,),
        "generator.to_image.weight": (out, channels[-1], k, k), "generator.to_image.bias": (out,),
    }

    def batch_norm(prefix: str, c: int) -> None:
        shapes.update({f"{prefix}.{t}": (c,) for t in ("weight", "bias", "running_mean", "running_var")})
        shapes[f"{prefix}.num_batches_tracked"] = ()

    if norm:
        batch_norm("generator.dense_norm", channels[0])
    for i in range(n_blocks):
        shapes[f"generator.blocks.{i}.conv.weight"] = (channels[i + 1], channels[i], k, k)
        if norm:
            batch_norm(f"generator.blocks.{i}.norm", channels[i + 1])
        else:
            shapes[f"generator.blocks.{i}.conv.bias"] = (channels[i + 1],)
    return shapes, channels, sizes


def _resize_axis(x: np.ndarray, out: int, axis: int, mode: str) -> np.ndarray:
    """torch.nn.Upsample(size=…, align_corners=False) along one axis ("nearest" or "bilinear")."""
    n = x.shape[axis]
    scale = np.float32(n / out)
    dst = np.arange(out, dtype=np.float32)
    if mode == "nearest":
        return np.take(x, np.minimum(np.floor(dst * scale).astype(np.int64), n - 1), axis=axis)
    src = np.maximum((dst + np.float32(0.5)) * scale - np.float32(0.5), np.float32(0.0))
    lo = np.minimum(np.floor(src).astype(np.int64), n - 1)
    hi = np.minimum(lo + 1, n - 1)
    frac = (src - lo).astype(np.float32)
    shape = [1] * x.ndim
    shape[axis] = out
    frac = frac.reshape(shape)
    return np.take(x, lo, axis=axis) * (np.float32(1.0) - frac) + np.take(x, hi, axis=axis) * frac


def _conv_same(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, padding_mode: str = "zeros") -> np.ndarray:
    """'Same'-padded 2-D cross-correlation of (N, C, H, W) with (O, C, k, k), as torch's conv2d
    with that `padding_mode` ("zeros", or "replicate": NumPy's "edge")."""
    k = weight.shape[-1]
    margin = ((0, 0), (0, 0), (k // 2, k // 2), (k // 2, k // 2))
    padded = np.pad(x, margin, mode="edge") if padding_mode == "replicate" else np.pad(x, margin)
    n, c, h, w = x.shape
    windows = np.lib.stride_tricks.sliding_window_view(padded, (k, k), axis=(2, 3))  # (N, C, H, W, k, k)
    columns = windows.transpose(0, 2, 3, 1, 4, 5).reshape(n * h * w, c * k * k)  # one row per output pixel
    y = columns @ weight.reshape(len(weight), -1).T
    if bias is not None:
        y += bias
    return y.reshape(n, h, w, -1).transpose(0, 3, 1, 2)


def _leaky(x: np.ndarray) -> np.ndarray:
    return np.where(x >= 0, x, x * np.float32(LEAKY_SLOPE))


@dataclass
class LeanGenerator:
    """A saved CP2Image model's inference function in NumPy; quacks like `CP2Image` where Home uses it."""

    config: dict[str, Any]
    layers: list[tuple[np.ndarray, np.ndarray]]  # (weight, bias) per convolution, batch norms folded in
    dense: tuple[np.ndarray, np.ndarray]  # dense weight (p, C0·s0²) and bias, its batch norm folded in
    channels: list[int]
    sizes: list[int]

    @property
    def feature_names(self) -> list[str]:
        return list(self.config["feature_names"])

    @property
    def image_size(self) -> int:
        return int(self.config.get("image_size", CROP_SIZE))

    def normalise(self, profiles: Any, *, warn: bool = False) -> np.ndarray:
        """Raw profiles (DataFrame with the model's columns, or an (N, p) array in model order) →
        standardised inputs clipped to ±clip_sigma, float32, as `CP2Image.normalise` (without warnings)."""
        names = self.feature_names
        columns = getattr(profiles, "columns", None)
        matrix = np.asarray(profiles[names] if columns is not None else profiles, dtype=np.float64)
        matrix = matrix.reshape(-1, len(names))
        if not np.isfinite(matrix).all():
            raise ValueError("the profile contains NaN/inf values")
        z = (matrix - np.asarray(self.config["feature_mean"], np.float64)) / np.asarray(self.config["feature_scale"], np.float64)
        limit = float(self.config.get("clip_sigma", 10.0))
        return np.clip(z, -limit, limit).astype(np.float32)

    def generate_from_normalised(self, z: np.ndarray) -> np.ndarray:
        """Standardised inputs (N, p) → uint8 images (N, C, H, W), as `CP2Image.generate_from_normalised`."""
        z = np.asarray(z, dtype=np.float32)
        if z.ndim != 2 or z.shape[1] != len(self.config["feature_names"]):
            raise ValueError(f"expected standardised inputs of shape (N, {len(self.config['feature_names'])}), got {z.shape}")
        weight, bias = self.dense
        x = _leaky((z @ weight + bias).reshape(len(z), self.channels[0], self.sizes[0], self.sizes[0]))
        mode = str(self.config.get("upsample_mode", "nearest"))
        padding = str(self.config.get("padding_mode", "zeros"))
        for (w, b), size in zip(self.layers[:-1], self.sizes[1:]):
            x = _leaky(_conv_same(x, w, b, padding))
            x = _resize_axis(_resize_axis(x, size, 2, mode), size, 3, mode)
        w, b = self.layers[-1]
        y = _conv_same(x, w, b, padding)
        if not np.isfinite(y).all():
            raise ValueError("the model produced NaN/inf pixels; its weights are corrupt or diverged")
        images = np.float32(1.0) / (np.float32(1.0) + np.exp(-y))
        return np.round(np.clip(images, 0, 1) * np.float32(255)).astype(np.uint8)


def _fold(weight: np.ndarray, bias: np.ndarray | None, tensors: dict[str, np.ndarray], norm: str | None
          ) -> tuple[np.ndarray, np.ndarray]:
    """conv (or dense) followed by batch norm `norm` (running statistics) as one affine map."""
    out = weight.shape[0]
    bias = np.zeros(out, np.float32) if bias is None else bias
    if norm is None:
        return weight, bias
    scale = tensors[f"{norm}.weight"] / np.sqrt(tensors[f"{norm}.running_var"] + np.float32(BATCH_NORM_EPS))
    shift = tensors[f"{norm}.bias"] - tensors[f"{norm}.running_mean"] * scale
    return weight * scale.reshape((-1,) + (1,) * (weight.ndim - 1)), bias * scale + shift


def read_lean_generator(folder: str | Path) -> LeanGenerator:
    """The CP2Image generator saved in `folder`; LeanUnsupported if it is anything else or its files
    fail the checks `CP2Image.from_pretrained` makes (config fields, tensor names and shapes, digest)."""
    from safetensors import SafetensorError, safe_open
    from safetensors.numpy import load_file

    folder = Path(folder)
    try:
        config = json.loads((folder / CONFIG_FILE).read_text())
        path = str(folder / WEIGHTS_FILE)
        tensors = load_file(path)
        with safe_open(path, framework="np") as fh:
            expected_digest = (fh.metadata() or {}).get(DIGEST_KEY)
    except (OSError, ValueError, SafetensorError) as err:
        raise LeanUnsupported(f"cannot read the model files ({err})") from err
    if not isinstance(config, dict) or (config.get("provenance") or {}).get("model_kind", "cp2image") != "cp2image":
        raise LeanUnsupported("not a CP2Image model")
    try:
        names, mean, scale = config["feature_names"], config["feature_mean"], config["feature_scale"]
        valid = (len(names) > 0 and len(set(names)) == len(names) == len(mean) == len(scale)
                 and all(math.isfinite(float(v)) for v in (*mean, *scale)) and all(float(s) > 0 for s in scale)
                 and float(config.get("clip_sigma", 10.0)) > 0 and int(config.get("kernel_size", 5)) % 2 == 1
                 and config.get("upsample_mode", "nearest") in ("nearest", "bilinear")
                 and config.get("padding_mode", "zeros") in PADDING_MODES)
        shapes, channels, sizes = _expected_shapes(config)
    except (KeyError, TypeError, ValueError) as err:
        raise LeanUnsupported(f"config.json is not a CP2Image config ({err})") from err
    if not valid:
        raise LeanUnsupported("config.json is not a valid CP2Image config")
    if {k: tuple(v.shape) for k, v in tensors.items()} != shapes:
        raise LeanUnsupported("the weights are not those of the CP2Image generator this module knows")
    if expected_digest is not None and tensor_digest(tensors) != expected_digest:
        raise LeanUnsupported("the tensor data do not match the SHA-256 recorded when the file was saved")
    norm = bool(config.get("batch_norm", True))
    n_blocks = len(channels) - 1
    weight, bias = _fold(tensors["generator.dense.weight"], tensors["generator.dense.bias"], {}, None)
    if norm:  # the dense layer's rows are (c, y, x): its batch norm scales each channel's block of rows
        rows = sizes[0] ** 2
        t = {k: np.repeat(v, rows) for k, v in tensors.items() if k.startswith("generator.dense_norm.")}
        t = {k.replace("generator.dense_norm.", "dense_norm."): v for k, v in t.items()}
        weight, bias = _fold(weight, bias, t, "dense_norm")
    layers = [_fold(tensors[f"generator.blocks.{i}.conv.weight"], tensors.get(f"generator.blocks.{i}.conv.bias"),
                    tensors, f"generator.blocks.{i}.norm" if norm else None) for i in range(n_blocks)]
    layers.append((tensors["generator.to_image.weight"], tensors["generator.to_image.bias"]))
    return LeanGenerator(config=config, layers=layers, dense=(np.ascontiguousarray(weight.T), bias),
                         channels=channels, sizes=sizes)


@dataclass
class LeanLoaded:
    """What Home reads of a loaded model (`cp2image.models.hub.LoadedModel`'s fields it shows), torch-free."""

    model: LeanGenerator
    source: str  # display label, e.g. "bundled: cp2image-sim" (`ResolvedModel.label`)
    folder: Path
    notice: str | None = None  # never set: a choice that needs a fallback notice is not served lean
    problem: str | None = None


def load_lean(spec: str | None) -> LeanLoaded | None:
    """The model `spec` names (None: the server's default, as `hub.load_or_default`) evaluated with
    NumPy, or None when only the torch model can serve it: a Hub model (its fallback chain and
    messages are `hub.load_model`'s), a folder that fails to resolve or to read, an architecture this
    module does not know. For those the caller loads the torch model, which says what is wrong."""
    from cp2image.models.hub import ModelKind, ModelRef, resolve

    try:
        ref = ModelRef.parse(spec)
        if ref.kind is ModelKind.HUB:
            return None
        resolved = resolve(ref)
        return LeanLoaded(read_lean_generator(resolved.folder), resolved.label, resolved.folder)
    except (ValueError, OSError):  # LeanUnsupported is a ValueError
        return None
