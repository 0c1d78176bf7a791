"""`cp2image space build`: a folder ready to push as a Hugging Face Space.

    cp2image space build OUT [--sdk docker|streamlit] [--model HUB_ID] [--title TEXT]

OUT gets the app, pages and package, runtime requirements, README.md with the Space's
YAML front matter, the bundled dataset and weights (or, with --model, a Hub repo id the
Space loads at start-up), hosted-mode settings and .gitattributes LFS rules for files
over 10 MB. Then: `hf upload my-lab/cp2image-demo OUT --repo-type space`
(or `git push` to the Space's repository with git-lfs installed).
"""
from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("space", help="build a Hugging Face Space folder for the app",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = p.add_subparsers(dest="space_command", metavar="ACTION", required=True)
    build = verbs.add_parser("build", help="write the Space folder")
    build.add_argument("out", metavar="OUT", help="new or empty folder")
    build.add_argument("--sdk", choices=("docker", "streamlit"), default="docker",
                       help="docker: the repository's Dockerfile (default); streamlit: Hugging Face's Streamlit SDK")
    build.add_argument("--model", default=None, metavar="HUB_ID",
                       help="serve this Hub model (org/name[@revision]) instead of bundling the weights")
    build.add_argument("--title", default="cp2image")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from cp2image.publish.cards import check_card_file
    from cp2image.publish.space import SpaceConfig, build_space

    out = Path(args.out)
    files = build_space(SpaceConfig(out=out, sdk=args.sdk, model=args.model, title=args.title))
    check_card_file(out / "README.md", repo_type="space")
    size = sum((out / f).stat().st_size for f in files)
    lfs = [line.split()[0] for line in (out / ".gitattributes").read_text().splitlines() if "*" not in line.split()[0]]
    print(f"wrote {len(files)} files ({size / 1e6:.1f} MB) to {out} ({args.sdk} SDK)")
    for name in lfs:
        print(f"  LFS (> 10 MB): {name}")
    print(f"next: hf upload <owner>/<space-name> {out} --repo-type space")
    return 0
