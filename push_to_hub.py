#!/usr/bin/env python
"""Build the complete Hub folder of a trained Multi-Still checkpoint and upload it.

Examples::

    # write the folder only (no network)
    python push_to_hub.py --model_dir outputs/teacher --repo_id me/multistill-teacher --local_dir hub/teacher

    # upload (token from --token, HF_TOKEN or `hf auth login`)
    python push_to_hub.py --model_dir outputs/light --repo_id me/multistill-light --private

The folder (built by ``multistill.tools.hub``, the same code ``train.py``/``distill.py --push_to_hub`` use)
holds ``config.json`` (``auto_map`` + the ``multimodal-emotion-recognition`` custom pipeline),
``model.safetensors``, the processor files, the custom code, ``run_info.json`` / ``test_results.json``
and plots when training wrote them, ``example.wav``/``example.txt`` and a ``README.md`` model card
(metadata with a ``model-index`` of this checkpoint's test results, the paper's table beside this run's
results, install line, runnable usage, limitations, license, BibTeX). Nothing else from ``--model_dir``
is copied. ``--local_dir`` must be a new or empty folder (``--overwrite`` replaces what is in it).
"""

from __future__ import annotations

import logging
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from transformers import HfArgumentParser

from multistill.tools import hub
from multistill.training.arguments import parse_command_line

logger = logging.getLogger("push_to_hub")


@dataclass
class PushToHubArguments:
    """Arguments of ``push_to_hub.py``."""

    model_dir: str = field(metadata={"help": "Trained checkpoint folder (model + processor, as train.py/distill.py "
                                             "write it; run_info.json and test_results.json are used if present)."})
    repo_id: str | None = field(default=None, metadata={"help": "Hub repository, 'user/name' (required to upload)."})
    local_dir: str | None = field(default=None, metadata={"help": "Write the Hub folder here (a new or empty "
                                                                  "folder) and do not upload."})
    overwrite: bool = field(default=False, metadata={"help": "With --local_dir: replace everything already in "
                                                             "that folder."})
    private: bool = field(default=False, metadata={"help": "Create the Hub repository as private."})
    token: str | None = field(default=None, metadata={"help": "Hub token (default: HF_TOKEN or the cached login)."})
    commit_message: str = field(default="Upload Multi-Still emotion recognition model",
                                metadata={"help": "Commit message of the upload."})
    license: str | None = field(
        default=None,
        metadata={"help": "License of the weights (card metadata). Default: research-only (ETRI's KEMDy terms) for "
                          "weights trained on KEMDy, apache-2.0 for the synthetic corpus."},
    )
    dataset_names: list[str] | None = field(
        default=None, metadata={"help": "Datasets for the card metadata (default: from run_info.json's corpus)."}
    )
    verify: bool = field(default=True, metadata={"help": "Reload the written folder and check it predicts the same."})
    session_results: list[str] | None = field(
        default=None,
        metadata={"help": "results.json files of the recipe's experiment (scripts/recipe.sh, e.g. "
                          "results/recipe_l2/fold1_test2/results.json ...fold2_test1/results.json): the card shows their "
                          "held-out-session table (every model and baseline, macro-F1 over seeds)."},
    )


#: The form of the Hub's license identifiers (apache-2.0, cc-by-nc-sa-4.0, openrail++, other, ...).
LICENSE_ID = re.compile(r"[a-z0-9][a-z0-9.+-]*")


def main(argv: list[str] | None = None) -> Path | str:
    """Build the Hub folder (``--local_dir``) or build and upload it; returns the folder or the commit URL."""
    # 1. Arguments and logging; every argument is checked before anything is loaded
    parser = HfArgumentParser(PushToHubArguments, description=__doc__)
    (args,) = parse_command_line(parser, sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    model_dir = hub.check_model_dir(args.model_dir)
    if args.local_dir is None and not args.repo_id:
        raise ValueError("Pass --repo_id to upload (or --local_dir to only write the folder).")
    if args.repo_id and hub.hub_id_error(args.repo_id, need_owner=True):
        raise ValueError(f"--repo_id {args.repo_id!r} is not a Hub repo id 'user/name': "
                         f"{hub.hub_id_error(args.repo_id, need_owner=True)}")
    if args.overwrite and args.local_dir is None:
        raise ValueError("--overwrite only applies to --local_dir.")
    if args.license is not None and not LICENSE_ID.fullmatch(args.license):
        raise ValueError(f"--license {args.license!r} is not a Hub license identifier (lower-case, e.g. apache-2.0, "
                         "mit, cc-by-nc-4.0, other): https://huggingface.co/docs/hub/repositories-licenses")
    for name in args.dataset_names or []:
        if reason := hub.hub_id_error(name):
            raise ValueError(f"--dataset_names {name!r} is not a Hub dataset id: {reason}")
    session_results = [hub.check_session_results(path) for path in args.session_results or []]
    options = {"license": args.license, "dataset_names": args.dataset_names, "verify": args.verify,
               "session_results": session_results or None}

    # 2. Write the folder only
    if args.local_dir is not None:
        target = hub.check_local_dir(args.local_dir, model_dir, args.overwrite)
        repo_id = args.repo_id or f"your-username/{target.name}"
        return hub.write_local_folder(model_dir, target, repo_id, **options)

    # 3. Or build it in a temporary folder and upload it
    return hub.publish(model_dir, args.repo_id, private=args.private, token=args.token,
                       commit_message=args.commit_message, **options)


__all__ = ["PushToHubArguments", "main"]


if __name__ == "__main__":
    try:
        main()
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
