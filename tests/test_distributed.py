"""Data-parallel training: torchrun with 2 CPU ranks (gloo) equals one process on the same
global batch, the ranks stay identical, rank 0 alone writes, and resume works across world
sizes. The NCCL/GPU path is not exercised here (no GPU in CI)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gancli.errors import ConfigError
from gancli.models.base import GAN
from gancli.training import distributed
from gancli.training.checkpoint import load_checkpoint
from gancli.training.distributed import Context
from gancli.training.loop import train
from tests.helpers import REPO, TINY, compose_config, run_gan

# The MLP GAN has no BatchNorm (model.batchnorm_g=false, its D has none), so each rank's loss
# over its slice is exactly its share of the global-batch loss and DDP's gradient average
# equals the one-process gradient. With BatchNorm, per-rank batch statistics would differ from
# global ones (unless train.sync_batchnorm=true, which needs GPUs).
MLP = ["dataset=grid25", "dataset.size=4096", "model=mlp", "model.width_g=32",
       "model.width_d=32", "model.layers_g=2", "model.layers_d=2", "device=cpu",
       "train.steps=6", "train.batch_size=64", "train.log_every=2", "train.sample_every=3",
       "train.ckpt_every=3", "train.num_samples=16"]
ONE_THREAD = {"OMP_NUM_THREADS": "1"}  # what torchrun gives each rank; also faster here
TOL = {"rtol": 1e-4, "atol": 1e-5}  # float sums in another order: 2 half-batches vs 1 batch


def torchrun(*args: str, cwd: Path, nproc: int = 2) -> subprocess.CompletedProcess:
    """`torchrun --standalone --nproc_per_node=2 tests/ddp_worker.py train ...` (free port)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for key in ("HYDRA_FULL_ERROR", "RANK", "WORLD_SIZE", "SUBMITIT_EXECUTOR"):
        env.pop(key, None)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={nproc}", str(REPO / "tests" / "ddp_worker.py"), *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def assert_close(a: dict, b: dict) -> None:
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        torch.testing.assert_close(a["model"][key], b["model"][key], **TOL, msg=key)


def assert_ranks_share_parameters(run_dir: Path) -> None:
    """The two ranks' final parameters agree; BatchNorm running statistics are each rank's
    own (no SyncBatchNorm on the CPU)."""
    rank0 = torch.load(run_dir / "rank0.pt", weights_only=True)
    rank1 = torch.load(run_dir / "rank1.pt", weights_only=True)
    params = [k for k in rank0["model"] if not k.endswith(("running_mean", "running_var",
                                                            "num_batches_tracked"))]
    assert params and all(torch.equal(rank0["model"][k], rank1["model"][k]) for k in params)


def records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def one_process(tmp_path_factory) -> Path:
    """The reference: `gan train` in one process on the same global batch of 64."""
    cwd = tmp_path_factory.mktemp("one_process")
    out = run_gan("train", *MLP, "hydra.run.dir=run", cwd=cwd, env=ONE_THREAD)
    assert out.returncode == 0, out.stderr
    return cwd / "run"


@pytest.mark.slow
def test_two_ranks_match_one_process_and_each_other(tmp_path, one_process):
    out = torchrun("train", *MLP, cwd=tmp_path)  # run dir left to Hydra's ${now:...} pattern
    assert out.returncode == 0, out.stderr[-3000:]

    # one run directory, shared by both ranks (each saved its weights there)
    runs = sorted(p.parent for p in (tmp_path / "outputs").rglob(".hydra"))
    assert len(runs) == 1, runs
    run = runs[0]
    hydra_overrides = (run / ".hydra" / "hydra.yaml").read_text()
    assert "hydra.run.dir=" in hydra_overrides  # rank 0's resolved directory, given to all
    rank0 = torch.load(run / "rank0.pt", weights_only=True)
    rank1 = torch.load(run / "rank1.pt", weights_only=True)

    # the ranks hold bit-identical weights
    assert all(torch.equal(rank0["model"][k], rank1["model"][k]) for k in rank0["model"])
    # the checkpoint holds the unwrapped modules (no DDP "module." prefix) = rank 0's weights
    ddp_ckpt = load_checkpoint(run)
    assert all(torch.equal(ddp_ckpt["model"][k], rank0["model"][k]) for k in rank0["model"])
    # and equals one process trained on the same global batches, within float tolerance
    assert_close(ddp_ckpt, load_checkpoint(one_process))
    assert torch.equal(ddp_ckpt["noise_rng"], load_checkpoint(one_process)["noise_rng"])

    # rank 0 alone logged: one record per log step (not one per rank), global-batch values
    ddp_log, ref_log = records(run), records(one_process)
    assert [r["step"] for r in ddp_log] == [2, 4, 6]
    for a, b in zip(ddp_log, ref_log, strict=True):
        for key in ("d_loss", "g_loss", "d_real", "d_fake", "grad_norm_d", "grad_norm_g"):
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-5), key
    assert sorted(p.name for p in (run / "samples").iterdir()) == [
        "step_0000003.png", "step_0000006.png"]

    # resume across world sizes: the 2-rank checkpoint at step 3, continued in one process
    cfg = compose_config([*MLP, f"resume={run / 'checkpoints' / 'step_0000003.pt'}"])
    train(cfg, tmp_path / "resumed_alone")
    assert_close(load_checkpoint(tmp_path / "resumed_alone"), load_checkpoint(one_process))


@pytest.mark.slow
def test_one_process_checkpoint_resumes_on_two_ranks(tmp_path, one_process):
    step3 = one_process / "checkpoints" / "step_0000003.pt"
    out = torchrun("train", *MLP, f"resume={step3}", "hydra.run.dir=resumed", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    resumed = load_checkpoint(tmp_path / "resumed")
    assert resumed["step"] == 6
    assert_close(resumed, load_checkpoint(one_process))
    assert [r["step"] for r in records(tmp_path / "resumed")] == [4, 6]


@pytest.mark.slow
def test_multi_task_submitit_job_trains_with_ddp(tmp_path, one_process):
    # hydra/launcher=slurm with tasks_per_node=N starts one task per GPU and no torchrun;
    # submitit_local starts its tasks the same way on this machine, with the same variables
    # submitit's job environment reads on a cluster.
    out = run_gan("train", "-m", "hydra/launcher=submitit_local",
                  "hydra.launcher.tasks_per_node=2", *MLP, "hydra.sweep.dir=sweep",
                  cwd=tmp_path, env=ONE_THREAD)
    assert out.returncode == 0, out.stderr[-3000:]
    job = tmp_path / "sweep" / "0"
    assert_close(load_checkpoint(job), load_checkpoint(one_process))
    assert [r["step"] for r in records(job)] == [2, 4, 6]  # one rank logged
    task_logs = sorted((tmp_path / "sweep" / ".submitit").rglob("*_log.err"))
    assert len(task_logs) == 2  # two tasks ran the job
    assert "1 jobs, best d_loss first" in out.stdout  # the sweep summary


@pytest.mark.slow
def test_batchnorm_model_with_several_critic_steps_trains_under_ddp(tmp_path):
    # DCGAN has BatchNorm in G and D, and D runs forward on real and fake batches before one
    # backward: the pattern that trips DDP when buffers or graphs are handled wrongly.
    # Random-weight networks: this checks the wiring, not image quality.
    out = torchrun("train", *TINY, "train.n_critic=2", "hydra.run.dir=run", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert_ranks_share_parameters(tmp_path / "run")
    assert load_checkpoint(tmp_path / "run")["step"] == 4


@pytest.mark.slow
def test_a_vae_on_two_ranks_matches_one_process(tmp_path):
    # The VAE draws its reparameterisation noise through the family's randn: sliced from the
    # shared stream, so 2 ranks see exactly the noise one process would (MLPs, no BatchNorm).
    vae = [*MLP, "model=vae", "model.width_g=32", "loss=gan"]
    vae = [o for o in vae if not o.startswith(("model.width_d", "model.layers"))]
    out = run_gan("train", *vae, "hydra.run.dir=one", cwd=tmp_path, env=ONE_THREAD)
    assert out.returncode == 0, out.stderr
    out = torchrun("train", *vae, "hydra.run.dir=two", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert_close(load_checkpoint(tmp_path / "two"), load_checkpoint(tmp_path / "one"))
    rank0 = torch.load(tmp_path / "two" / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "two" / "rank1.pt", weights_only=True)
    assert all(torch.equal(rank0["model"][k], rank1["model"][k]) for k in rank0["model"])
    for a, b in zip(records(tmp_path / "two"), records(tmp_path / "one"), strict=True):
        assert a["kl"] == pytest.approx(b["kl"], rel=1e-4, abs=1e-5)


@pytest.mark.slow
def test_stylegan2_on_two_ranks_matches_one_process(tmp_path):
    # Its noise inputs, style mixing and path-length draws come from the family's stream and
    # the path-length mean is averaged over ranks, so 2 ranks train as one process would.
    # No minibatch-stddev (its groups would span the ranks' slices); random weights, 8x8.
    sg2 = ["+experiment=stylegan2_mnist5k", "dataset.resolution=8", "model.width_g=8",
           "model.width_d=8", "model.z_dim=8", "model.w_dim=8", "model.mbstd_group=0",
           "model.style_mixing=0.5", "loss.pl_weight=2", "loss.pl_every=2", "loss.reg_every=2",
           "train.steps=4", "train.batch_size=16", "train.log_every=1", "train.ckpt_every=4",
           "train.sample_every=100", "train.num_samples=4", "device=cpu"]
    out = run_gan("train", *sg2, "hydra.run.dir=one", cwd=tmp_path, env=ONE_THREAD)
    assert out.returncode == 0, out.stderr
    out = torchrun("train", *sg2, "hydra.run.dir=two", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    one, two = load_checkpoint(tmp_path / "one"), load_checkpoint(tmp_path / "two")
    assert one["model"]["pl_mean"] != 0
    assert_close(two, one)
    assert_ranks_share_parameters(tmp_path / "two")


@pytest.mark.slow
def test_progan_grows_on_two_ranks_that_stay_identical(tmp_path):
    # Blocks of resolutions not reached yet take no part in a step: DDP must look for them
    # (Family.unused_parameters) or it waits for their gradients and fails at the second step.
    # Not compared with one process: WGAN-GP's interpolation draws are each rank's own.
    pro = ["+experiment=progan_mnist5k", "dataset.resolution=16", "model.width_g=8",
           "model.width_d=8", "model.z_dim=8", "model.phase_steps=2", "model.mbstd_group=0",
           "train.steps=9", "train.batch_size=8", "train.log_every=1", "train.ckpt_every=9",
           "train.sample_every=100", "train.num_samples=4", "device=cpu"]
    out = torchrun("train", *pro, "hydra.run.dir=two", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert_ranks_share_parameters(tmp_path / "two")
    assert load_checkpoint(tmp_path / "two")["model"]["G.stage"] == 2  # 4 -> 8 -> 16


# --- one process: the pieces torchrun runs ---------------------------------------------------

class Labelled(GAN):
    """A model family overriding sample_labels, as conditional GANs do."""

    def sample_labels(self, n, device, generator=None):
        return self.randint(10, n, device=device, generator=generator)


def tiny_gan(family=GAN) -> GAN:
    from gancli.data.base import DataInfo

    return family(torch.nn.Linear(4, 2), torch.nn.Linear(2, 1), 4, DataInfo("x", "points", (2,)))


def test_training_view_shares_modules_and_leaves_the_gan_alone():
    gan = tiny_gan()
    view = distributed.for_training(gan, Context(), seed=3)
    assert isinstance(view, GAN) and type(gan) is GAN
    assert view.G is gan.G and view.D is gan.D  # one process: nothing wrapped
    expected = torch.randn(8, 4, generator=torch.Generator().manual_seed(
        3 + distributed.NOISE_SEED_OFFSET))
    assert torch.equal(view.sample_latent(8, torch.device("cpu")), expected)
    # a checkpoint's noise state continues the stream exactly
    state = view.noise.get_state()
    after = view.sample_latent(8, torch.device("cpu"))
    again = distributed.for_training(gan, Context(), seed=3, noise_state=state)
    assert torch.equal(again.sample_latent(8, torch.device("cpu")), after)


@pytest.mark.parametrize("family", [GAN, Labelled])
def test_rank_slices_of_the_noise_make_up_the_one_process_batch(monkeypatch, family):
    # _wrap needs a process group; the torchrun tests cover it, here only slicing is checked
    monkeypatch.setattr(distributed, "_wrap", lambda module, ctx, sync, unused: module)
    cpu = torch.device("cpu")
    alone = distributed.for_training(tiny_gan(family), Context(), seed=0)
    ranks = [distributed.for_training(tiny_gan(family), Context(rank=r, world_size=2), seed=0)
             for r in range(2)]
    for _ in range(2):  # two steps: the shared stream advances alike on every rank
        z_all, y_all = alone.sample_latent(6, cpu), alone.sample_labels(6, cpu)
        z = [v.sample_latent(3, cpu) for v in ranks]
        y = [v.sample_labels(3, cpu) for v in ranks]
        assert torch.equal(torch.cat(z), z_all)
        assert (y_all is None and y == [None, None]) or torch.equal(torch.cat(y), y_all)
    assert not torch.equal(z[0], z[1])


def test_sync_batchnorm_on_cpu_ranks_is_a_config_error():
    with pytest.raises(ConfigError, match="train.sync_batchnorm"):
        distributed.for_training(tiny_gan(), Context(world_size=2), seed=0, sync_batchnorm=True)


def test_sync_batchnorm_conversion_keeps_parameters_and_keys():
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    keys, weight = net.state_dict().keys(), net[1].weight
    converted = torch.nn.SyncBatchNorm.convert_sync_batchnorm(net)
    assert isinstance(converted[1], torch.nn.SyncBatchNorm)
    assert converted[1].weight is weight and converted.state_dict().keys() == keys


def test_single_process_helpers_pass_values_through():
    ctx = Context()
    assert distributed.rank_seed(7, 0) == 7 and distributed.rank_seed(7, 1) != 7
    assert distributed.mean_over_ranks(ctx, {"a": 1.5}) == {"a": 1.5}
    assert distributed.any_rank(ctx, True) and not distributed.any_rank(ctx, False)
    assert distributed.finite_on_all_ranks(torch.tensor(1.0))
    assert not distributed.finite_on_all_ranks(torch.tensor(float("nan")))
    assert distributed.broadcast_object({"x": 1}) == {"x": 1}


def _clear_rank_env(monkeypatch):
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR",
                "MASTER_PORT", "SUBMITIT_EXECUTOR"):
        # setenv first so that monkeypatch restores the key even when code under test sets
        # it (delenv of an absent key records nothing; a leaked WORLD_SIZE would make later
        # `gan train` subprocesses wait for ranks that never come)
        monkeypatch.setenv(key, "")
        monkeypatch.delenv(key)


def test_torchrun_environment_means_launched(monkeypatch):
    _clear_rank_env(monkeypatch)
    assert not distributed.launched()
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert distributed.launched()


def test_slurm_tasks_of_a_submitit_job_become_ranks(monkeypatch):
    # What Slurm sets in task 3 of a 2-node x 2-task job that submitit submitted.
    _clear_rank_env(monkeypatch)
    for key, value in {"SUBMITIT_EXECUTOR": "slurm", "SLURM_JOB_ID": "4242",
                       "SLURM_PROCID": "3", "SLURM_LOCALID": "1", "SLURM_NTASKS": "4",
                       "SLURM_JOB_NUM_NODES": "2", "SLURM_NODEID": "1",
                       "SLURM_JOB_NODELIST": "gpu[07-08]"}.items():
        monkeypatch.setenv(key, value)
    assert distributed.launched()
    assert (os.environ["RANK"], os.environ["WORLD_SIZE"], os.environ["LOCAL_RANK"]) == \
        ("3", "4", "1")
    assert os.environ["MASTER_ADDR"] == "gpu07"  # the job's first node hosts the rendezvous
