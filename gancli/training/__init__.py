"""The training loop and what it needs: optimizers, checkpoints, logs, sample images."""
