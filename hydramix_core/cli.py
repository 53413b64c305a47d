"""The ``hydramix`` command: HydraMix on your own class folders. See ``hydramix --help``."""

from __future__ import annotations

import argparse
import sys

from .api import augment_folder, fit_generator, train_classifier_on_folder
from .data import DatasetError
from .generator_files import CheckpointError
from .outputs import OutputError, describe_os_error
from .profiles import ProfileError
from .sweep import SweepError, main_with


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value

EXAMPLES = {
    "fit-generator": "example:\n  hydramix fit-generator --data my_images --steps 2000 --out runs/gen\n"
                     "  hydramix fit-generator --data my_images --out runs/gen --resume   # after an interruption",
    "augment": "example:\n  hydramix augment --generator runs/gen --data my_images --per-class 50 --out my_images_hydramix",
    "train-classifier": "examples:\n  hydramix train-classifier --data my_images --method baseline --steps 3000\n"
                        "  hydramix train-classifier --data my_images --test my_test_images --method hydramix "
                        "--generator runs/gen",
    "sweep": "examples:\n  hydramix sweep run --profile paper --executor slurm --partition gpu --time 720 --wait\n"
             "  hydramix sweep run --profile paper --executor local      # one worker per visible GPU\n"
             "  hydramix sweep status --profile paper",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hydramix", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="HydraMix: learn a data augmentation from a few labelled images (no pretraining, no extra data).\n"
                    "Images live in DIR/<class>/*.png|jpg (or DIR/train/<class>/, with an optional DIR/test/<class>/).",
        epilog="\n\n".join(EXAMPLES.values()))
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name, help_text):
        command = sub.add_parser(name, help=help_text, description=help_text, epilog=EXAMPLES[name],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
        command.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="default: auto (CUDA if present)")
        command.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
        return command

    fit = add("fit-generator", "Train a HydraMix generator on every image of a class folder.")
    fit.add_argument("--data", required=True, help="class folder DIR/<class>/ or DIR/train/<class>/")
    fit.add_argument("--out", required=True, help="run folder for the checkpoint, segmentations and run.json")
    fit.add_argument("--image-size", type=positive_int, help="square size to train at (default: the images' own, else 32)")
    fit.add_argument("--steps", type=positive_int, default=2000, help="training steps (default 2000)")
    fit.add_argument("--n-mix", type=positive_int, nargs="+", default=[2, 3, 4], help="images per mix, drawn per batch (default 2 3 4)")
    fit.add_argument("--ngf", type=positive_int, default=64, help="generator width (default 64; 16 is ~10x faster on CPU)")
    fit.add_argument("--batch-size", type=positive_int, default=16, help="default 16")
    fit.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    fit.add_argument("--overwrite", action="store_true",
                     help="replace a run folder this command made (never one holding other files)")

    augment = add("augment", "Write new images per class with a trained generator.")
    augment.add_argument("--generator", required=True, help="run folder made by fit-generator")
    augment.add_argument("--data", required=True, help="the class folder the generator was trained on")
    augment.add_argument("--per-class", type=positive_int, required=True, help="images to write per class")
    augment.add_argument("--out", required=True, help="output folder: <class>/*.png, masks/, contact_sheet.png, manifest.json")
    augment.add_argument("--n-mix", type=positive_int, default=3, help="images mixed per output (default 3)")
    augment.add_argument("--resume", action="store_true", help="finish an interrupted augment into --out")
    augment.add_argument("--overwrite", action="store_true",
                         help="replace an output folder this command made (never one holding other files)")

    train = add("train-classifier", "Train the study's classifier on a class folder and print its test accuracy.")
    train.add_argument("--data", required=True, help="class folder DIR/<class>/ or DIR/train/<class>/")
    train.add_argument("--test", help="test class folder (default DIR/test/ if present, else a held-out 20%% per class)")
    train.add_argument("--method", default="baseline", help="baseline, hydramix, mixup, cutmix, autoaugment, ... (default baseline)")
    train.add_argument("--generator", help="run folder made by fit-generator (needed by hydramix)")
    train.add_argument("--p-gen", type=float, default=0.5, help="probability a sample is generated (default 0.5)")
    train.add_argument("--model", help="wrn16_8, wrn16_2 or resnet50 (default by image size)")
    train.add_argument("--steps", type=positive_int, help="training steps (default: 200 epochs)")
    train.add_argument("--out", help="write the result record (JSON) here")
    train.add_argument("--overwrite", action="store_true", help="replace an existing result record at --out")

    sweep_help = "Run the study's profiles as independent units on a Slurm cluster or this machine's GPUs."
    add_sweep_arguments(sub.add_parser("sweep", help=sweep_help, description=sweep_help, epilog=EXAMPLES["sweep"],
                                 formatter_class=argparse.RawDescriptionHelpFormatter))
    return parser


def add_sweep_arguments(parser) -> None:
    """``hydramix sweep run|status`` (``worker``: one local GPU worker, started by ``run``)."""
    sub = parser.add_subparsers(dest="action", required=True)
    for name, help_text in (("run", "run or submit the units whose results are missing"),
                            ("status", "units done / running / queued / pending / failed, with each failure's error")):
        action = sub.add_parser(name, help=help_text, description=help_text)
        action.add_argument("--profile", default="smoke", help="profile name (profiles/<name>.yaml) or a YAML file")
        action.add_argument("--results", help="results folder (default results/<profile>)")
        action.add_argument("--runs-per-unit", type=int, default=4, help="classifier runs per unit (default 4)")
        action.add_argument("--generators-per-unit", type=int, default=1,
                            help="generators per unit, trained concurrently on a GPU (default 1)")
    run = sub.choices["run"]
    run.add_argument("--executor", choices=["local", "slurm"], default="local")
    # Slurm resources: the command line, else the profile's `slurm:` section, else SLURM_DEFAULTS
    run.add_argument("--partition", help="Slurm partition (default: the cluster's default)")
    run.add_argument("--time", type=int, help="Slurm time limit per task, minutes (default 240)")
    run.add_argument("--gpus", type=int, help="GPUs per Slurm task (default 1; 0 for CPU nodes)")
    run.add_argument("--cpus", type=int, help="CPUs per Slurm task (default 8)")
    run.add_argument("--mem", type=int, help="memory per Slurm task, GB (default 32)")
    run.add_argument("--parallelism", type=int, help="Slurm tasks of one array running at once (default 64)")
    run.add_argument("--wait", action="store_true", help="Slurm: wait until every submitted unit has ended")
    run.add_argument("--devices", help="local: comma-separated GPU indices (default: every visible GPU; none: CPU)")
    worker_parser = sub.add_parser("worker")  # internal: one local GPU worker
    worker_parser.add_argument("--profile", required=True)
    worker_parser.add_argument("--results", required=True)
    worker_parser.add_argument("--kind", required=True, choices=["generator", "classifier"])
    worker_parser.add_argument("--runs-per-unit", type=int, required=True)
    worker_parser.add_argument("--generators-per-unit", type=int, default=1)


RESUME_HINT = {
    "fit-generator": "",  # the interruption message says where the checkpoint is
    "augment": "the finished classes are kept: rerun the same command with --resume to finish.",
    "train-classifier": "nothing was written: rerun the command to train again.",
}


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "sweep":
        try:
            return main_with(args)
        except (SweepError, ProfileError) as error:
            print(f"hydramix sweep: error: {error}", file=sys.stderr)
            return 2
    try:
        if args.command == "fit-generator":
            fit_generator(args.data, args.out, image_size=args.image_size, steps=args.steps, n_mix=args.n_mix, ngf=args.ngf,
                          batch_size=args.batch_size, seed=args.seed, device=args.device, resume=args.resume,
                          overwrite=args.overwrite)
        elif args.command == "augment":
            augment_folder(args.generator, args.data, args.out, per_class=args.per_class, n_mix=args.n_mix, seed=args.seed,
                           device=args.device, overwrite=args.overwrite, resume=args.resume)
        else:
            train_classifier_on_folder(args.data, test_dir=args.test, method=args.method, generator=args.generator,
                                       model=args.model, steps=args.steps, p_gen=args.p_gen, seed=args.seed,
                                       device=args.device, out=args.out, overwrite=args.overwrite)
    except (OutputError, DatasetError, CheckpointError, FileNotFoundError, ValueError) as error:
        print(f"hydramix {args.command}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # full disk, permissions, read-only file systems: named, with what to do
        hint = RESUME_HINT[args.command] or "Then rerun the same command with --resume (or --overwrite to start again)."
        print(f"hydramix {args.command}: error: {describe_os_error(error)} {hint}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:
        print(f"\nhydramix {args.command}: interrupted. {str(interrupt) or RESUME_HINT[args.command]}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
