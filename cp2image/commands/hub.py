"""`cp2image hub`: publish a model or a dataset folder to the Hugging Face Hub.

    cp2image hub push MODEL_DIR REPO_ID [--private] [--dry-run]
    cp2image hub push-dataset DATASET_DIR REPO_ID [--license ID] [--private] [--dry-run]

`push` uploads the model folder as it is (config.json, model.safetensors, the README.md
model card, evaluation/ and any files beside them) after checking the card's YAML front
matter. `push-dataset` uploads a cp2image dataset folder with a dataset card written
from its dataset.json (or the folder's own README.md, checked). `--dry-run` lists every
file and the total size and sends nothing. A real push needs a network and a token
(`hf auth login` or HF_TOKEN).
"""
from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("hub", help="publish a model or dataset to the Hugging Face Hub",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = p.add_subparsers(dest="hub_command", metavar="ACTION", required=True)
    model = verbs.add_parser("push", help="upload a model folder (weights, config, card, evaluation)")
    model.add_argument("folder", metavar="MODEL_DIR")
    model.add_argument("repo_id", metavar="REPO_ID", help="e.g. my-lab/cp2image-sim")
    dataset = verbs.add_parser("push-dataset", help="upload a dataset folder with a dataset card")
    dataset.add_argument("folder", metavar="DATASET_DIR")
    dataset.add_argument("repo_id", metavar="REPO_ID", help="e.g. my-lab/bbbc021-cells")
    dataset.add_argument("--license", default="other",
                         help="Hub license id for the generated card (default 'other'; say what applies to your images)")
    for verb in (model, dataset):
        verb.add_argument("--private", action="store_true", help="create the repo as private")
        verb.add_argument("--dry-run", action="store_true", help="list what would be uploaded and its size; send nothing")
    p.set_defaults(run=run)


def _check_repo_id(repo_id: str) -> None:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise ValueError(f"{repo_id!r} is not a valid Hub repo id ({err})") from err
    if "/" not in repo_id:
        raise ValueError(f"{repo_id!r}: give the owner too, as in 'my-lab/{repo_id}'")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from cp2image.publish.cards import check_card_file, dataset_card
    from cp2image.publish.upload import plan_upload, push

    _check_repo_id(args.repo_id)
    folder = Path(args.folder)
    generated_card: str | None = None
    if args.hub_command == "push":
        for name in ("config.json", "model.safetensors"):
            if not (folder / name).is_file():
                raise FileNotFoundError(f"{folder}: no {name}; is this a cp2image model folder?")
        check_card_file(folder / "README.md", repo_type="model")
        plan = plan_upload(folder, args.repo_id, repo_type="model")
    else:
        if not (folder / "dataset.json").is_file():
            raise FileNotFoundError(f"{folder}: no dataset.json; is this a cp2image dataset folder?")
        if (folder / "README.md").is_file():
            check_card_file(folder / "README.md", repo_type="dataset")
        else:
            from cp2image.publish.cards import check_card

            generated_card = dataset_card(folder, license_=args.license, repo_id=args.repo_id)
            check_card(generated_card, repo_type="dataset", where="generated dataset card")
        plan = plan_upload(folder, args.repo_id, repo_type="dataset")
    print(plan.describe())
    if generated_card is not None:
        print(f"{len(generated_card.encode()):>14,}  README.md (dataset card, generated from dataset.json)")
    if args.dry_run:
        print("dry run: nothing was uploaded")
        return 0
    url = push(plan, private=args.private, extra_files={"README.md": generated_card} if generated_card else None)
    print(f"uploaded: {url}")
    return 0
