"""A small domain encoder: an MoA classifier CNN whose penultimate layer embeds crops.

Inception-v3 was trained on photographs, and its weights are not always at hand;
an encoder trained on the real training crops of the dataset itself gives an
embedding that is about cells and always available offline. Fréchet distance and
KID in this embedding are reported beside FID, but they are *not* comparable with
Inception FID, nor across encoders: compare models only under one saved encoder.

Saved as `encoder.safetensors` (weights) + `encoder.json` (config, class names).
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

logger = logging.getLogger(__name__)

WEIGHTS_FILE = "encoder.safetensors"
CONFIG_FILE = "encoder.json"


@dataclass
class EncoderConfig:
    """Architecture and training settings of the domain encoder."""

    in_channels: int = 3  # DNA, tubulin, actin
    base_filters: int = 16  # filters of the first conv block; doubled per block
    n_blocks: int = 3  # conv blocks, each halving the resolution
    embedding_dim: int = 64  # penultimate layer = the embedding
    n_classes: int = 2  # MoA classes (set from the training labels)
    epochs: int = 4  # passes over the training crops
    batch_size: int = 128
    lr: float = 2e-3  # Adam learning rate
    max_train_cells: int = 20000  # random subset of training crops, for speed on CPU
    seed: int = 0


class DomainEncoder(nn.Module):
    """conv blocks → global average pool → embedding (ReLU) → linear MoA logits."""

    def __init__(self, config: EncoderConfig, classes: list[str] | None = None) -> None:
        super().__init__()
        self.config = config
        self.classes = list(classes) if classes is not None else [str(i) for i in range(config.n_classes)]
        if len(self.classes) != config.n_classes:
            raise ValueError(f"{len(self.classes)} class names for n_classes={config.n_classes}")
        layers: list[nn.Module] = []
        width_in = config.in_channels
        for i in range(config.n_blocks):
            width = config.base_filters * 2**i
            layers += [
                nn.Conv2d(width_in, width, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            width_in = width
        self.features = nn.Sequential(*layers)
        self.embedding = nn.Sequential(nn.Linear(width_in, config.embedding_dim), nn.ReLU(inplace=True))
        self.head = nn.Linear(config.embedding_dim, config.n_classes)

    @staticmethod
    def prepare(images: np.ndarray) -> torch.Tensor:
        """uint8 (N, C, H, W) → float (N, C, H, W) in [0, 1]."""
        return torch.from_numpy(np.asarray(images, dtype=np.float32) / 255.0)

    def embed_tensor(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x)  # (N, F, H', W')
        h = h.mean(dim=(2, 3))  # (N, F)
        return self.embedding(h)  # (N, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed_tensor(x))  # (N, n_classes)

    @torch.no_grad()
    def embed(self, images: np.ndarray, *, batch_size: int = 512) -> np.ndarray:
        """(N, embedding_dim) float64 embeddings of uint8 crops."""
        was_training = self.training
        self.eval()
        out = np.empty((len(images), self.config.embedding_dim), dtype=np.float64)
        for start in range(0, len(images), batch_size):
            batch = np.asarray(images[start : start + batch_size])
            out[start : start + len(batch)] = self.embed_tensor(self.prepare(batch)).double().numpy()
        self.train(was_training)
        return out

    @torch.no_grad()
    def predict(self, images: np.ndarray, *, batch_size: int = 512) -> np.ndarray:
        """Predicted class names of uint8 crops."""
        self.eval()
        idx = []
        for start in range(0, len(images), batch_size):
            batch = np.asarray(images[start : start + batch_size])
            idx.append(self(self.prepare(batch)).argmax(dim=1).numpy())
        return np.asarray(self.classes)[np.concatenate(idx)] if idx else np.array([], dtype=str)

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | os.PathLike, *, extra: dict | None = None) -> Path:
        """Write weights (safetensors) and config (JSON) into `directory`."""
        from safetensors.torch import save_file

        from cp2image.data.files import give_ordinary_permissions

        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(out / WEIGHTS_FILE))
        give_ordinary_permissions(out / WEIGHTS_FILE)
        payload = {"config": asdict(self.config), "classes": self.classes, "extra": extra or {}}
        (out / CONFIG_FILE).write_text(json.dumps(payload, indent=2) + "\n")
        return out

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "DomainEncoder":
        """Load an encoder saved by `save` (strict key check)."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        root = Path(directory)
        for name in (WEIGHTS_FILE, CONFIG_FILE):
            if not (root / name).is_file():
                raise FileNotFoundError(f"{root}: missing {name}; is this a saved domain encoder?")
        try:
            payload = json.loads((root / CONFIG_FILE).read_text())
            config = EncoderConfig(**payload["config"])
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise ValueError(f"{root / CONFIG_FILE}: invalid encoder config ({err})") from err
        model = cls(config, payload.get("classes"))
        try:
            state = load_file(str(root / WEIGHTS_FILE))
        except (SafetensorError, OSError) as err:
            raise ValueError(f"{root / WEIGHTS_FILE}: cannot read weights ({err})") from err
        model.load_state_dict(state, strict=True)
        model.eval()
        return model


@dataclass
class EncoderTraining:
    """A trained encoder and its training curve."""

    encoder: DomainEncoder
    history: list[dict] = field(default_factory=list)  # epoch, loss, train_accuracy


def train_domain_encoder(
    images: np.ndarray,
    labels: np.ndarray | list[str],
    *,
    config: EncoderConfig | None = None,
    progress: bool = False,
) -> EncoderTraining:
    """Train the encoder as a classifier of `labels` (e.g. MoA) on real crops."""
    from tqdm.auto import tqdm

    config = config or EncoderConfig()
    labels = np.asarray(labels).astype(str)
    if len(labels) != len(images):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    classes = sorted(np.unique(labels).tolist())
    if len(classes) < 2:
        raise ValueError(f"need at least 2 classes to train the domain encoder, got {classes}")
    config = EncoderConfig(**{**asdict(config), "n_classes": len(classes), "in_channels": int(images.shape[1])})
    gen = torch.Generator().manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    subset = np.sort(rng.permutation(len(images))[: config.max_train_cells])
    x_all = np.asarray(images[subset])  # (n, C, H, W) uint8, in RAM (bounded by max_train_cells)
    y_all = torch.from_numpy(np.searchsorted(classes, labels[subset]))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = DomainEncoder(config, classes)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr)
    loss_fn = nn.CrossEntropyLoss()
    history = []
    model.train()
    for epoch in tqdm(range(config.epochs), desc="domain encoder", disable=not progress, unit="epoch"):
        order = torch.randperm(len(x_all), generator=gen).numpy()
        total, correct, seen = 0.0, 0, 0
        for start in range(0, len(order), config.batch_size):
            idx = order[start : start + config.batch_size]
            if len(idx) < 2:
                continue  # batch norm needs two samples
            x = DomainEncoder.prepare(x_all[idx])
            y = y_all[idx]
            logits = model(x)
            loss = loss_fn(logits, y)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += loss.item() * len(idx)
            correct += int((logits.argmax(dim=1) == y).sum())
            seen += len(idx)
        history.append({"epoch": epoch + 1, "loss": total / max(seen, 1), "train_accuracy": correct / max(seen, 1)})
        logger.info("domain encoder epoch %d: loss %.3f, accuracy %.3f", epoch + 1, *list(history[-1].values())[1:])
    model.eval()
    return EncoderTraining(encoder=model, history=history)


__all__ = ["EncoderConfig", "DomainEncoder", "EncoderTraining", "train_domain_encoder"]
