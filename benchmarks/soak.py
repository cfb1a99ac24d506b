"""Kill -9 soak: a run checkpointing every step is killed N times at random moments (start-up,
mid-step, mid-write), each time continued with `gan train resume=<dir>` alone, and must end
bit-identical to an uninterrupted run, with no temporary file left behind.

    python benchmarks/soak.py                  # N=30 kills
    python benchmarks/soak.py --kills 10 --steps 600 --time-limit 300

Prints one line per kill and a summary; exit status 0 when every check holds.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUN = ["dataset=ring8", "dataset.size=4096", "model=mlp", "model.width_g=32",
       "model.width_d=32", "model.layers_g=2", "model.layers_d=2", "device=cpu",
       "device.threads=1", "train.batch_size=64", "train.log_every=5",
       "train.sample_every=100000", "train.ckpt_every=1", "train.keep_last=3", "seed=7"]


def gan(*args: str, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.Popen([sys.executable, "-m", "gancli", "train", *args], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def checkpoint_step(run: Path) -> int:
    from gancli.training.checkpoint import newest_checkpoint

    found = newest_checkpoint(run / "checkpoints", warn=lambda message: None)
    return found[1]["step"] if found else 0


def newest_step_file(run: Path) -> int:
    """The step of the newest step_N.pt, from the file names alone (cheap to poll)."""
    steps = [int(p.stem.split("_")[1]) for p in (run / "checkpoints").glob("step_*.pt")]
    return max(steps, default=0)


def compare(a: dict, b: dict) -> list[str]:
    """Keys whose tensors (or values) differ between two checkpoints."""
    from gancli.training.checkpoint import _tensors

    differ = []
    for key in sorted(set(a) | set(b)):
        if key in ("checksum", "config"):
            continue
        ta, tb = dict(_tensors(a.get(key))), dict(_tensors(b.get(key)))
        if ta.keys() != tb.keys() or any(not (ta[k].dtype == tb[k].dtype
                                              and ta[k].shape == tb[k].shape
                                              and bool((ta[k] == tb[k]).all())) for k in ta):
            differ.append(key)
        elif not ta and a.get(key) != b.get(key):
            differ.append(key)
    return differ


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--seed", type=int, default=0, help="the kill schedule's seed")
    parser.add_argument("--max-delay", type=float, default=5.0,
                        help="a start-up kill lands this many seconds after the start, at "
                             "most; a training kill up to a tenth of it after the first "
                             "checkpoint the process wrote")
    parser.add_argument("--startup-share", type=float, default=0.2,
                        help="the share of kills aimed at start-up")
    parser.add_argument("--time-limit", type=float, default=900.0)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()

    from gancli.training.checkpoint import load_checkpoint

    rng = random.Random(args.seed)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="gancli-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(work / "run", ignore_errors=True)
    shutil.rmtree(work / "ref", ignore_errors=True)
    start = time.monotonic()
    config = [*RUN, f"train.steps={args.steps}"]

    ref = gan(*config, "hydra.run.dir=ref", cwd=work)
    if ref.wait() != 0:
        print(ref.stderr.read(), file=sys.stderr)
        return 1
    ref_seconds = time.monotonic() - start
    print(f"uninterrupted run: {args.steps} steps in {ref_seconds:.1f} s")

    kills, progressed, finished_early = 0, 0, False
    command = [*config, "hydra.run.dir=run"]  # the first start; then resume=run alone
    while kills < args.kills:
        if time.monotonic() - start > args.time_limit:
            print(f"time limit reached after {kills} kills")
            break
        before = checkpoint_step(work / "run")
        proc = gan(*command, cwd=work)
        if rng.random() < args.startup_share:  # during start-up: imports, config, the lock
            time.sleep(rng.uniform(0.1, args.max_delay))
        else:  # once this process has written a checkpoint: mid-step or mid-write
            deadline = time.monotonic() + 120
            while (newest_step_file(work / "run") <= before and proc.poll() is None
                   and time.monotonic() < deadline):
                time.sleep(0.01)
            time.sleep(rng.uniform(0, args.max_delay / 10))
        if proc.poll() is not None:  # it finished (or failed) before the kill landed
            if proc.returncode != 0:
                print(f"run failed: {proc.stderr.read()}", file=sys.stderr)
                return 1
            finished_early = True
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        after = checkpoint_step(work / "run")
        progressed += after > before
        print(f"kill {kills:3d}: checkpoint step {before} -> {after}")
        command = ["resume=run"]
    if not finished_early:
        last = gan("resume=run", cwd=work)
        if last.wait() != 0:
            print(f"final resume failed: {last.stderr.read()}", file=sys.stderr)
            return 1

    run, reference = load_checkpoint(work / "run"), load_checkpoint(work / "ref")
    differ = compare(run, reference)
    temporaries = [str(p.relative_to(work)) for p in (work / "run").rglob("*")
                   if p.name.endswith(".tmp")]
    steps = [json.loads(line)["step"] for line in
             (work / "run" / "metrics.jsonl").read_text().splitlines()]
    ref_steps = [json.loads(line)["step"] for line in
                 (work / "ref" / "metrics.jsonl").read_text().splitlines()]
    ok = (run["step"] == args.steps and not differ and not temporaries
          and steps == ref_steps)
    summary = {
        "kills": kills, "kills_after_progress": progressed, "steps": args.steps,
        "bit_identical": not differ, "differing_keys": differ,
        "temporary_files_left": temporaries, "metrics_lines_match": steps == ref_steps,
        "seconds": round(time.monotonic() - start, 1), "ok": ok,
    }
    print(json.dumps(summary))
    if args.workdir is None and ok:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
