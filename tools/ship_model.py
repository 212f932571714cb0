"""Ship a retrained digit model: its weights (fp16, with the front end's ``level_floor``) and card into assets.

``earmark train --out DIR`` writes ``DIR/<name>.pt`` and ``DIR/<name>.json``. This copies them into
``assets/models/``, stores the soft-RMS floor the run was trained with in the weights (runs started before
the floor became a buffer saved none, and weights without it load with the legacy floor), keeps the
bundled card's held-out-speaker result (labelled as measured with the earlier recipe, which it was) and
records how the starting weights and the synthetic speech were made.

Usage (a fine-tune names the commit whose weights it started from; a run from scratch does not):
    python tools/ship_model.py runs/train-melcnn melcnn-digits --floor 0.03 --init-from 0fef759 \
        --speech-command "python tools/make_speech.py --out runs/speech/digits-8k.npz --takes 3 --heldout-takes 2"
    python tools/ship_model.py runs/train-audionet audionet-digits --floor 0.03 --speech-command "..."
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from earmark.assets import models_dir  # noqa: E402

HELDOUT_KEYS = ("heldout_speaker", "heldout_speaker_accuracy", "heldout_speaker_clips", "heldout_speaker_protocol",
                "heldout_training_command", "heldout_run_test_accuracy")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="the --out folder of the training run")
    parser.add_argument("name", help="model name, e.g. audionet-digits")
    parser.add_argument("--floor", type=float, required=True, help="the soft-RMS floor the run trained with")
    parser.add_argument("--init-from", default=None,
                        help="commit whose bundled weights the run started from (a fine-tune; omit for a run from scratch)")
    parser.add_argument("--speech-command", required=True, help="the command that made the speech cache")
    args = parser.parse_args(argv)
    dest = models_dir()
    state = torch.load(args.run / f"{args.name}.pt", map_location="cpu", weights_only=True)
    state["level_floor"] = torch.tensor(args.floor, dtype=torch.float16)
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in state.items()}
    torch.save(state, dest / f"{args.name}.pt")
    card = json.loads((args.run / f"{args.name}.json").read_text())
    old = json.loads((dest / f"{args.name}.json").read_text())
    for key in HELDOUT_KEYS:
        if key in old["metrics"]:
            card["metrics"][key] = old["metrics"][key]
    how = "this fine-tune" if args.init_from else "this retraining"
    if "heldout_speaker" in old["metrics"]:
        card["metrics"]["heldout_speaker_note"] = ("measured with the round-1 recipe and front end (RMS floor 0.001, "
                                                   f"FSDD only); not re-run after {how}")
    card["training_command"] = card["training_command"].replace("--data ../../shared/data/fsdd",
                                                                "--data ../shared/data/fsdd")
    speech = (f"FSDD's training split plus {card['metrics'].get('synthetic_training_clips', 0)} synthetic espeak-ng "
              f"clips (`{args.speech_command}`; voices in earmark.data.speech, the bundled examples' voices en-us "
              "and f3 excluded). Accuracy by word position: the FSDD test clips with the word moved flush to "
              "the window's start / left centred / moved to its end.")
    if args.init_from:
        card["notes"] += (f" Fine-tuned from the bundled weights of commit {args.init_from} "
                          f"(`git show {args.init_from}:assets/models/{args.name}.pt > "
                          f"{card['training_command'].split('--init ')[1].split()[0]}`), whose front end had the "
                          f"floor 0.001, on {speech}")
    else:
        card["notes"] += f" Trained from scratch with the soft floor {args.floor:g} on {speech}"
    (dest / f"{args.name}.json").write_text(json.dumps(card, indent=2) + "\n")
    print(f"shipped {args.name} → {dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
