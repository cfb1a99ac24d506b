"""The seam between the training core and the model families: the core names no family,
imports run downward, and the README's non-adversarial example family trains as written."""

import ast
import re

import torch

from gancli.registry import MODELS
from gancli.sampling import SampleArgs, run_sample
from gancli.training.checkpoint import load_checkpoint
from gancli.training.loop import train
from tests.helpers import REPO, compose_config

FAMILIES = ("mlp", "dcgan", "resnet", "cgan", "acgan", "infogan", "sgan", "ae", "vae",
            "biggan")


def _imports(path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_the_training_core_names_no_model_family():
    names = "|".join(FAMILIES)
    pattern = re.compile(rf"[\"']({names})[\"']|gancli\.models\.({names})\b")
    for path in (REPO / "gancli" / "training").glob("*.py"):
        assert not pattern.search(path.read_text()), path.name


def test_imports_run_downward():
    package = REPO / "gancli"
    for path in package.rglob("*.py"):
        imported = _imports(path)
        if path.name != "__main__.py":  # `python -m gancli` is the command itself
            assert "gancli.cli" not in imported, path
        if path.name != "cli.py":
            assert "gancli.training.loop" not in imported, path
    assert not any(m.startswith("gancli.training") for m in _imports(package / "config.py"))
    for path in (package / "losses").glob("*.py"):
        assert not any(m.startswith("gancli.models") for m in _imports(path)), path
    for path in (package / "models").glob("*.py"):
        assert not any(m.startswith(("gancli.training", "gancli.metrics", "gancli.sampling"))
                       for m in _imports(path)), path


def test_the_readmes_autoencoder_example_trains_resumes_and_samples(tmp_path, monkeypatch):
    readme = (REPO / "README.md").read_text()
    source = re.search(r"```python\n(# gancli/models/tinyae.py\n.*?)```", readme, re.S).group(1)
    MODELS.names()  # the real models first; the example's is gone again after this test
    monkeypatch.setattr(MODELS, "_entries", dict(MODELS._entries))
    exec(compile(source, "README tinyae", "exec"), {})
    config_class = MODELS.get("tinyae").config
    base = ["dataset=ring8", "dataset.size=512", "device=cpu", "train.batch_size=32",
            "train.log_every=5", "train.sample_every=10", "train.ckpt_every=10",
            "train.ema.decay=0.9"]

    def run(steps: int, run_dir, resume=False):
        cfg = compose_config([*base, f"train.steps={steps}",
                              *([f"resume={run_dir}"] if resume else [])])
        cfg.model = config_class()
        train(cfg, run_dir)

    run(20, tmp_path / "full")
    run(10, tmp_path / "half")
    run(20, tmp_path / "half", resume=True)
    a, b = load_checkpoint(tmp_path / "full"), load_checkpoint(tmp_path / "half")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert a["ema"] is not None and "model" in a["optimizers"]
    out = run_sample(SampleArgs(ckpt=str(tmp_path / "full"), out=str(tmp_path / "s.npz"), n=4))
    assert out.is_file()
