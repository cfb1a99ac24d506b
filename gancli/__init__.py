"""gancli: train, sample and evaluate GANs from the command line."""

__version__ = "0.1.0"
