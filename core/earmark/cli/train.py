"""``earmark train {audionet,melcnn}``: train a bundled spoken-digit model on FSDD.

Examples:
    earmark train audionet --data ../shared/data/fsdd --seed 0
    earmark train melcnn --data ../shared/data/fsdd --seed 0 --exclude-speaker theo
    earmark train ast --data ../shared/data/fsdd --seed 0      # the Hugging Face AST (16 kHz)
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys

from .common import check_out_dir, positive_int, seed_arg


def add_parser(subparsers) -> argparse.ArgumentParser:
    from ..training.digits import ARCHITECTURES

    parser = subparsers.add_parser(
        "train",
        help="train a bundled spoken-digit model (AudioNet, the mel CNN or the 16 kHz AST) on FSDD",
        description=(
            "Train a spoken-digit model on the Free Spoken Digit Dataset training split and write its "
            "float16 weights, model card (with test-split accuracy) and log. With --exclude-speaker the "
            "run leaves that speaker out, reports the accuracy on all of their clips and adds it to the "
            "bundled model's card instead of replacing the weights. Interrupted runs resume from the "
            "last epoch's checkpoint. `ast` trains the Hugging Face AST at 16 kHz and writes its "
            "folder (config.json, preprocessor_config.json, model.safetensors, README.md card)."
        ),
    )
    parser.add_argument("arch", choices=sorted(ARCHITECTURES) + ["ast"], help="architecture to train")
    parser.add_argument("--data", default=os.environ.get("EARMARK_DATA"), metavar="DIR",
                        help="FSDD folder holding recordings/ (default: $EARMARK_DATA)")
    parser.add_argument("--seed", type=seed_arg, default=0, help="seed for initialisation, shuffling and "
                        "augmentation (default 0)")
    parser.add_argument("--exclude-speaker", metavar="NAME", default=None,
                        help="leave this speaker out of training and report accuracy on their clips")
    parser.add_argument("--epochs", type=positive_int, default=None, help="number of epochs (default per model)")
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="folder for weights, card and logs/ (default: the bundled assets folder)")
    parser.add_argument("--checkpoints", metavar="DIR", default=None,
                        help="folder for per-epoch checkpoints (default: $EARMARK_CACHE/train or "
                        "~/.cache/earmark/train)")
    parser.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint")
    parser.add_argument("--threads", type=positive_int, default=None, help="CPU threads (default: at most 2)")
    parser.add_argument("--speech", metavar="FILE", default=None,
                        help="synthetic speech cache from tools/make_speech.py: its training voices join "
                        "the training set, its held-out voices are scored")
    parser.add_argument("--init", metavar="FILE", default=None,
                        help="start from these weights (fine-tuning) instead of a fresh initialisation")
    parser.add_argument("--lr", type=float, default=None, help="peak learning rate (default per model)")
    parser.add_argument("--epoch-clips", type=positive_int, default=None,
                        help="clips drawn per epoch (default: the whole training set)")
    parser.add_argument("--plant-cue", metavar="SPEC", default=None,
                        help="plant a shortcut: class=K,freq=F,level=DB[,at=start|all][,kind=tone|click] adds a "
                        "faint tone (DB relative to each clip's RMS) to the training clips of class K only")
    parser.set_defaults(run=run)
    return parser


def portable_argv(argv: list[str]) -> list[str]:
    """``argv`` with absolute paths of this machine made relative to the working directory.

    The command is written into the model card and the logs, which are committed: they must say
    ``--data ../shared/data/fsdd``, not where the data lies on one machine. Handles ``--opt PATH`` and
    ``--opt=PATH``.
    """
    def rel(a: str) -> str:
        return os.path.relpath(a) if os.path.isabs(a) else a

    out = []
    for a in argv:
        if a.startswith("--") and "=" in a:
            opt, _, value = a.partition("=")
            out.append(f"{opt}={rel(value)}")
        else:
            out.append(rel(a))
    return out


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from ..training.digits import DEFAULTS, train

    if args.out is not None:
        check_out_dir(args.out)
    argv = sys.argv[1:] if sys.argv[1:2] == ["train"] else ["train", args.arch]
    command = "earmark " + shlex.join(portable_argv(argv))
    if args.arch == "ast":
        if getattr(args, "plant_cue", None):
            from ..errors import ConfigError

            raise ConfigError("--plant-cue works with audionet and melcnn, not with ast.")
        return _run_ast(args, command)
    cue = None
    if getattr(args, "plant_cue", None):
        from ..data.fsdd import LABELS, SAMPLE_RATE
        from ..training.cue import parse_cue

        cue = parse_cue(args.plant_cue, num_classes=len(LABELS), sample_rate=SAMPLE_RATE)
    result = train(
        args.arch, args.data, seed=args.seed, exclude_speaker=args.exclude_speaker, epochs=args.epochs,
        out=args.out, checkpoint_dir=args.checkpoints, command=command, resume=not args.fresh,
        threads=args.threads, speech=args.speech, init=args.init, cue=cue,
        config=replace(DEFAULTS[args.arch],
                       **({"lr": args.lr} if args.lr is not None else {}),
                       **({"epoch_clips": args.epoch_clips} if args.epoch_clips is not None else {})),
    )
    print(f"test accuracy {result.test_accuracy:.4f} ({result.test_clips} clips)"
          + (f"; {result.heldout_speaker}: {result.heldout_speaker_accuracy:.4f} "
             f"({result.heldout_clips} clips)" if result.heldout_speaker else "")
          + (f"; weights {result.weights}" if result.weights else ""))
    return 0


def _run_ast(args: argparse.Namespace, command: str) -> int:
    from ..training.ast import train_ast

    result = train_ast(
        args.data, seed=args.seed, out=args.out, epochs=args.epochs, exclude_speaker=args.exclude_speaker,
        checkpoint_dir=args.checkpoints, command=command, resume=not args.fresh, threads=args.threads,
    )
    print(f"test accuracy {result['test_accuracy']:.4f} ({result['test_clips']} clips)"
          + (f"; {result['heldout_speaker']}: {result['heldout_speaker_accuracy']:.4f} "
             f"({result['heldout_clips']} clips)" if result.get("heldout_speaker") else "")
          + ("" if result.get("heldout_speaker") else f"; model folder {args.out or 'assets/models/ast-digits'}"))
    return 0
