"""What an evaluation measures and how much of it (`EvaluationConfig`)."""
from __future__ import annotations

from dataclasses import dataclass, field

from cp2image.data.columns import MOA
from cp2image.evaluation.encoder import EncoderConfig
from cp2image.evaluation.moa_fidelity import MoAClassifierConfig

MOA_GROUPINGS: tuple[str, ...] = ("auto", "plate", "well", "split")


@dataclass
class EvaluationConfig:
    """What to evaluate and how much of it."""

    split: str = "test"  # held-out split(s) to evaluate on; "test,val" pools both
    max_cells: int | None = 2000  # held-out cells evaluated (seeded random subset); None = all
    max_train_cells: int = 5000  # real training cells measured to train the MoA classifier
    batch_size: int = 256  # generation / embedding batch
    n_jobs: int | None = None  # feature measurement worker processes (None = in process)
    kid_subsets: int = 100  # KID: number of random subsets (reference: 100)
    kid_subset_size: int = 1000  # KID: subset size (reference: 1000; shrinks to the smaller set)
    inception: str | None = None  # FID Inception TorchScript file; None → $CP2IMAGE_INCEPTION
    inception_max_cells: int | None = None  # evaluated cells passed through Inception (None = all; it is slow on CPU)
    encoder_dir: str | None = None  # saved domain encoder to reuse; None → train one on the train split
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    label_column: str = MOA  # classes of the encoder and the MoA classifier
    # MoA fidelity protocol: "plate"/"well" = GroupKFold over held-out plates (wells), each scored by a
    # classifier trained on the training split + other folds; "split" = training split → held-out split;
    # "auto" = "plate" when no plate spans training and held-out cells, else "well"
    moa_groups: str = "auto"
    moa_classifier: MoAClassifierConfig = field(default_factory=MoAClassifierConfig)
    # also run the MoA-loss probes (cp2image.evaluation.moa_diagnosis) → moa_diagnosis.csv/json; needs the
    # training split's profiles and held-out plates or wells
    moa_diagnosis: bool = False
    moa_control: str = "DMSO"  # baseline of the per-MoA signatures (moa_signature.csv)
    # real cells' profiles: "measure" them here (default), or "stored" = the dataset's own columns,
    # valid only when the dataset was measured by cp2image.features.measure (same code as the generated
    # crops); saves measuring thousands of real crops again on every evaluation
    real_features: str = "measure"
    threshold: float = 0.5  # correlation threshold of the Fig. 4a fraction
    n_top: int = 20  # top/bottom features listed
    pairs_budget_bytes: int = 2_500_000  # cap on pairs.parquet's raw float32 payload (random cells beyond it)
    seed: int = 0
    progress: bool = False  # tqdm bars
