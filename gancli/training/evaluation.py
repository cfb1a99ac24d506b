"""Evaluation during training (train.eval_every): one metric on a small, fixed sample, logged
next to the losses; the caller keeps the best checkpoint by it.

The real statistics are computed (or read from the cache) once, when the evaluator is built,
so a missing Inception weights file fails the run before its first step.
"""

from __future__ import annotations

import math

import torch

from gancli.config import Config, EvalMetric, TrainConfig
from gancli.data.base import GanData
from gancli.images import to_uint8
from gancli.metrics import cache
from gancli.metrics.evaluate import MetricSettings, compute_metrics
from gancli.metrics.extractors import build_extractor, extract
from gancli.metrics.sources import DatasetSource
from gancli.models.family import Family
from gancli.training.logging import RunLogger

BATCH_SIZE = 100
# train.eval_metric -> (feature extractor, metric computed on its features)
MEASURES = {
    EvalMetric.fid: ("inception", "fid"),
    EvalMetric.kid: ("inception", "kid"),
    EvalMetric.mnist_fid: ("mnist", "fid"),
    EvalMetric.mnist_kid: ("mnist", "kid"),
}


def evaluation_keys(t: TrainConfig) -> set[str]:
    """The metrics.jsonl keys evaluation adds, so train.metric may name them."""
    return {t.eval_metric.value} if t.eval_every else set()


class PeriodicEvaluator:
    def __init__(self, cfg: Config, data: GanData, device: torch.device):
        t = cfg.train
        extractor_name, self.measure = MEASURES[t.eval_metric]
        self.key, self.every, self.last_step = t.eval_metric.value, t.eval_every, t.steps
        self.n, self.seed, self.device = t.eval_n, cfg.seed, device
        self.extractor = build_extractor(extractor_name, device, t.eval_inception_weights)
        real = DatasetSource(cfg.dataset, t.eval_n, cfg.seed, data=data,
                             num_workers=t.num_workers)
        self.real = cache.real_stats(
            real, self.extractor.protocol,
            lambda: extract(self.extractor, real.batches(BATCH_SIZE), device)[0], None)
        self.settings = MetricSettings(seed=cfg.seed)
        self.best = math.inf  # lower is better for every EvalMetric

    def due(self, step: int) -> bool:
        return step % self.every == 0 or step == self.last_step

    def run(self, step: int, gan: Family, logger: RunLogger, G: torch.nn.Module | None = None
            ) -> bool:
        """Evaluate the generator (`G`, e.g. the EMA copy, else gan.G) on the same noise every
        time and log the values; True on a new best."""
        from gancli.sampling import generate_batches  # sampling is the layer above

        was_training = gan.training
        gan.eval()
        batches = (to_uint8(x) for x, _ in
                   generate_batches(gan, self.n, self.device, self.seed, BATCH_SIZE, G))
        features, logits = extract(self.extractor, batches, self.device)
        gan.train(was_training)
        values = compute_metrics([self.measure], self.real, features, logits, self.extractor,
                                 self.settings, self.device)
        logger.log_eval(step, {k: v for k, v in values.items() if not isinstance(v, list)})
        improved = values[self.key] < self.best
        self.best = min(self.best, values[self.key])
        return improved


def build_evaluator(cfg: Config, data: GanData, device: torch.device) -> PeriodicEvaluator | None:
    return PeriodicEvaluator(cfg, data, device) if cfg.train.eval_every else None
