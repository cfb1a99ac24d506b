"""Started by torchrun from tests/test_distributed.py, once per rank: runs the real `gan train`
command (the code path of `torchrun -m gancli train`), then saves this rank's final state (the
family's state_dict, under "model") into the run directory as rank<RANK>.pt, so the test can
compare ranks (only rank 0 writes checkpoints). The two wrappers below only record what `train`
built and where.
"""

import os
import sys
from pathlib import Path

import torch

import gancli.training.loop as loop
from gancli.cli import main

seen = {}
build_model, train = loop.build_model, loop.train


def recording_build_model(cfg, info):
    seen["gan"] = build_model(cfg, info)
    return seen["gan"]


def recording_train(cfg, run_dir):
    seen["run_dir"] = Path(run_dir)
    return train(cfg, run_dir)


loop.build_model, loop.train = recording_build_model, recording_train
main(sys.argv[1:])  # e.g. train dataset=grid25 ...
torch.save({"model": seen["gan"].state_dict()}, seen["run_dir"] / f"rank{os.environ['RANK']}.pt")
