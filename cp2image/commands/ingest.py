"""`cp2image ingest fields|crops`: turn real images into a cp2image dataset.

    cp2image ingest fields --image-table BBBC021_v1_image.csv --objects Nuclei.csv \\
        --root IMAGES/ --out DATASET [--moa-table BBBC021_v1_moa.csv --moa-only]
    cp2image ingest fields --image-table BBBC021_v1_image.csv --root IMAGES/ --out DATASET   # finds nuclei
    cp2image ingest crops --npz bbbc021_cells_68x68.npz [more.npz ...] --channel-order DNA,Actin,Tubulin --out DATASET
    cp2image ingest crops --folder CROPS/ --metadata crops.csv --out DATASET
"""
from __future__ import annotations

import argparse
import contextlib
import logging

FIELDS_EPILOG = """\
Without --objects (the official BBBC021 download has no per-object table) the nuclei are
found on each field's DNA channel with the segmentation every crop is measured with,
crops are centred on their centroids and features are measured. Fields with none of
their files under --root are skipped (not downloaded); a field missing some channel
files is skipped and each missing file named, or with --strict it is an error.

ImageNumber in the objects table joins to (TableNumber,) ImageNumber of the image table
when it has that column, else to its 1-based data-row order (as CellProfiler numbers
image sets). Crops are centred on Nuclei_Location_Center_X/Y; cells too close to the
border are skipped and counted. Measurement columns (Nuclei_*, Cells_*, Cytoplasm_*)
are carried over by name as features.
"""


def _add_common(p: argparse.ArgumentParser, *, split_default: str) -> None:
    p.add_argument("--out", required=True, help="dataset directory to create")
    p.add_argument("--moa-table", default=None, help="MoA table (compound, concentration, moa), e.g. BBBC021_v1_moa.csv")
    p.add_argument("--moa-only", action="store_true", help="keep only cells whose treatment has an MoA")
    p.add_argument("--normalise", choices=("max", "percentile"), default="max",
                   help="16-bit → uint8: divide by the per-image max (original work) or stretch percentiles")
    p.add_argument("--percentiles", type=float, nargs=2, default=(0.1, 99.9), metavar=("LOW", "HIGH"),
                   help="percentiles mapped to 0 and 255 with --normalise percentile (default 0.1 99.9)")
    p.add_argument("--split-by", choices=("well", "plate"), default=split_default,
                   help=f"Metadata_Split groups: no well/plate spans two splits (default {split_default})")
    p.add_argument("--seed", type=int, default=0, help="seed for split assignment (and --subset)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset at --out")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--drop-failed", action="store_true",
                   help="with measured features: drop cells whose segmentation failed or with NaN features "
                        "(default: keep them, flagged in Metadata_Segmentation_Failed)")
    p.add_argument("--report", default=None, metavar="MD",
                   help="also write a Markdown report (counts, segmentation success, feature families)")
    p.add_argument("--restart", action="store_true",
                   help="discard the unfinished work of an interrupted ingest instead of resuming it "
                        "(the same command resumes by default)")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ingest", help="build a dataset from TIFF fields + CellProfiler CSVs, or from crops",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    kinds = p.add_subparsers(dest="source", metavar="SOURCE", required=True)

    f = kinds.add_parser("fields", help="BBBC021-style TIFF fields + image table + CellProfiler per-object CSV",
                         epilog=FIELDS_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    f.add_argument("--image-table", required=True, help="per-field table, e.g. BBBC021_v1_image.csv")
    f.add_argument("--objects", nargs="+", metavar="CSV", default=None,
                   help="CellProfiler per-object CSV(s): Nuclei.csv first (centres), then optionally Cells.csv, "
                        "Cytoplasm.csv whose features join on (ImageNumber, ObjectNumber); "
                        "omit to find the nuclei in the fields (features are then measured)")
    f.add_argument("--strict", action="store_true",
                   help="without --objects: a field missing one of its channel files is an error "
                        "(default: skip it, name the missing file, ingest the complete fields)")
    f.add_argument("--root", required=True, help="folder the Image_PathName_* columns are relative to")
    f.add_argument("--crop", type=int, default=68, help="crop edge in pixels (default 68)")
    f.add_argument("--scope", choices=("field", "crop"), default="field",
                   help="compute intensity limits per field of view (default) or per crop")
    f.add_argument("--object-name", default=None,
                   help="prefix for unprefixed measurement columns (default: file stem if Nuclei/Cells/Cytoplasm)")
    f.add_argument("--features", choices=("carried", "measured"), default="carried",
                   help="carry the objects table's CellProfiler columns (default) or measure features on the crops")
    f.add_argument("--n-jobs", type=int, default=None,
                   help="dask LocalCluster worker processes when features are measured (default: one per core)")
    f.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="measure on an existing dask cluster (tcp://host:8786) instead of a local one")
    f.add_argument("--chunk-rows", type=int, default=20_000, metavar="N",
                   help="with --objects: object rows read, cropped and written at a time (one resumable unit; "
                        "default 20000)")
    _add_common(f, split_default="well")
    f.set_defaults(run=run)

    c = kinds.add_parser("crops", help="ready-made crops (.npz or folder of .npy + metadata CSV); measures features")
    src = c.add_mutually_exclusive_group(required=True)
    src.add_argument("--npz", nargs="+", metavar="NPZ",
                     help="archive(s) with 'images' (N,H,W,3) raw crops + 1-D metadata arrays; several archives "
                          "become one dataset (Metadata_Crop_Source names each crop's archive)")
    src.add_argument("--folder", help="folder of .npy crops (H,W,3 or 3,H,W), listed in --metadata")
    c.add_argument("--metadata", help="CSV for --folder: crop_file, plate, well, compound, concentration, ...")
    c.add_argument("--channel-order", default="DNA,Tubulin,Actin", metavar="NAMES",
                   help="the input's channels in stored order, comma-separated (default DNA,Tubulin,Actin; "
                        "the shared BBBC021 crop archives need DNA,Actin,Tubulin); recorded in provenance")
    c.add_argument("--subset", type=int, default=None, help="ingest only this many crops (seeded sample)")
    c.add_argument("--n-jobs", type=int, default=None,
                   help="dask LocalCluster worker processes for feature measurement (default: one per core)")
    c.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="measure on an existing dask cluster (tcp://host:8786) instead of a local one")
    c.add_argument("--no-measure", action="store_true", help="skip feature measurement (images + metadata only)")
    c.add_argument("--batch-size", type=int, default=512, metavar="N",
                   help="crops normalised, measured and written at a time (one resumable unit; default 512)")
    _add_common(c, split_default="plate")
    c.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from cp2image.data.intensity import IntensityConfig

    logging.basicConfig(level=logging.WARNING)
    measured = (args.source == "crops" and not args.no_measure) or (
        args.source == "fields" and (not args.objects or args.features == "measured"))
    with _cluster(args) if measured else contextlib.nullcontext() as client:  # per-field / per-batch dask tasks
        return _run(args, IntensityConfig, client)


def _cluster(args: argparse.Namespace):
    from cp2image.distributed import ClusterConfig, dask_client
    from cp2image.features.measure import _resolve_jobs

    if args.n_jobs == 0:
        raise ValueError("--n-jobs must be a positive number of workers or negative (-1 = all cores), not 0")
    workers = None if args.n_jobs is None else _resolve_jobs(args.n_jobs)
    return dask_client(ClusterConfig(scheduler=args.scheduler, n_workers=workers))


def _run(args: argparse.Namespace, IntensityConfig, client) -> int:
    intensity = IntensityConfig(method=args.normalise, low_percentile=args.percentiles[0],
                                high_percentile=args.percentiles[1])
    if args.source == "fields":
        from cp2image.data.ingest import FieldIngestConfig, ingest_fields, ingest_fields_finding_nuclei

        config = FieldIngestConfig(
            crop_size=args.crop, intensity=intensity, scope=args.scope, moa_only=args.moa_only,
            split_by=args.split_by, seed=args.seed, object_name=args.object_name,
            features=args.features, n_jobs=args.n_jobs, drop_failed=args.drop_failed, chunk_rows=args.chunk_rows,
            progress=not args.no_progress, overwrite=args.overwrite, strict=args.strict, restart=args.restart,
        )
        if args.objects:
            summary = ingest_fields(args.image_table, args.objects, args.out, root=args.root,
                                    moa_table=args.moa_table, config=config, client=client)
        else:
            summary = ingest_fields_finding_nuclei(args.image_table, args.out, root=args.root,
                                                   moa_table=args.moa_table, config=config, client=client)
    else:
        from cp2image.data.ingest import CropIngestConfig, combine_sources, folder_source, ingest_crops, npz_source

        if args.folder and not args.metadata:
            raise ValueError("--folder needs --metadata (a CSV listing the crops)")
        config = CropIngestConfig(  # first, so a bad --channel-order fails before large archives are read
            intensity=intensity, channel_order=args.channel_order, split_by=args.split_by, seed=args.seed,
            subset=args.subset, moa_only=args.moa_only, measure=not args.no_measure, n_jobs=args.n_jobs,
            drop_failed=args.drop_failed, batch_size=args.batch_size, progress=not args.no_progress,
            overwrite=args.overwrite, restart=args.restart,
        )
        if args.npz:
            source = combine_sources([npz_source(path) for path in args.npz])
        else:
            source = folder_source(args.folder, args.metadata)
        summary = ingest_crops(source, args.out, moa_table=args.moa_table, config=config, client=client)
    print("\n".join(summary.lines()))
    if args.report:
        _write_report(args, summary)
    return 0


def _write_report(args: argparse.Namespace, summary) -> None:
    import shlex
    import sys
    from pathlib import Path

    from cp2image.data import open_dataset
    from cp2image.data.ingest import ingest_report

    command = "cp2image " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else None
    text = ingest_report(open_dataset(args.out), summary, command=command)
    Path(args.report).parent.mkdir(parents=True, exist_ok=True)
    Path(args.report).write_text(text + "\n")
    print(f"report written to {args.report}")
