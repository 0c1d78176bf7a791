"""`cp2image critic install`: put a critic (or an ensemble of critics) into a model folder.

    cp2image critic install --model MODEL_DIR CRITIC [CRITIC ...] [--refine '{"steps": 10, "lr": 0.05}']

Each CRITIC is a `cp2image regressor` output folder. The first becomes `MODEL_DIR/critic`,
any further ones its ensemble members (`critic/member-1`, …): refinement then steers by
their mean reading (cp2image.models.refine). `--refine` sets fields of the model's default
refinement (`critic/refine.json`); without it the folder's current settings are kept (or
the defaults, for a model without a critic). The new critic is loaded back before the old
one is replaced.
"""
from __future__ import annotations

import argparse
import json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("critic", help="install a critic or an ensemble of critics into a model folder",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = p.add_subparsers(dest="critic_command", metavar="ACTION", required=True)
    install = verbs.add_parser("install", help="copy regressor folders into MODEL_DIR/critic")
    install.add_argument("--model", required=True, help="model folder (CP2Image) to give the critic")
    install.add_argument("critics", nargs="+", metavar="CRITIC", help="`cp2image regressor` output folder(s)")
    install.add_argument("--refine", default=None, metavar="JSON",
                         help="fields of the default refinement, e.g. '{\"steps\": 10, \"lr\": 0.05}' "
                              "(others keep the folder's current values)")
    install.set_defaults(run=run_install)


def run_install(args: argparse.Namespace) -> int:
    from dataclasses import asdict
    from pathlib import Path

    from cp2image.models.refine import RefineConfig, find_critic, install_critic

    model_dir = Path(args.model)
    if not (model_dir / "config.json").is_file():
        raise ValueError(f"{model_dir}: not a model folder (no config.json)")
    current = find_critic(model_dir)
    fields = asdict(current.default_config()) if current is not None else asdict(RefineConfig())
    if args.refine:
        try:
            changes = json.loads(args.refine)
        except json.JSONDecodeError as err:
            raise ValueError(f"--refine is not JSON ({err}): {args.refine!r}") from err
        if not isinstance(changes, dict) or set(changes) - set(fields):
            raise ValueError(f"--refine takes an object with RefineConfig fields {sorted(fields)}, got {args.refine!r}")
        fields.update(changes)
    config = RefineConfig(**fields)
    target = install_critic(args.critics[0], model_dir, config=config, members=args.critics[1:])
    members = len(args.critics)
    print(f"installed {'an ensemble of ' + str(members) + ' critics' if members > 1 else 'a critic'} in {target}; "
          f"refinement: {json.dumps(asdict(config))}")
    return 0
