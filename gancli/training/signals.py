"""SIGINT / SIGTERM (Ctrl-C, preemption) ask the loop to checkpoint and stop; a second Ctrl-C
stops at once."""

from __future__ import annotations

import signal
import threading


class StopRequested(Exception):
    """Raised by the loop after it saved a checkpoint because a signal asked it to stop."""

    def __init__(self, signum: int, step: int, checkpoint):
        self.signum, self.step, self.checkpoint = signum, step, checkpoint
        from gancli.training.resume import resume_command

        name = signal.Signals(signum).name
        super().__init__(f"stopped by {name} at step {step}; checkpoint saved to {checkpoint}; "
                         f"continue with: {resume_command(checkpoint.parent.parent)}")


class Interrupted(BaseException):
    """SIGINT/SIGTERM outside the training loop (which handles them itself): start-up, or
    the end of a run. A BaseException, so that nothing on the way (Hydra included) reports
    it as an error with a traceback."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


_unhandled: int | None = None  # a start-up stop whose exception something swallowed


def stop_now(signum, frame):
    """Start-up handler (outside the loop): stop at once. The signal is also recorded, so code
    that swallows the exception (a C extension clearing errors, a `__del__`) cannot lose it:
    the loop's `GracefulStop` and the CLI's exit look for it again."""
    global _unhandled
    _unhandled = signum
    raise Interrupted(signum)


def raise_unhandled_stop() -> None:
    """Raise `Interrupted` for a start-up signal whose exception never reached its handler."""
    if _unhandled is not None:
        raise Interrupted(_unhandled)


def forget_stop() -> None:
    """The stop was reported: a later command in this process starts clean."""
    global _unhandled
    _unhandled = None


class GracefulStop:
    """Context manager: while active, the first SIGINT/SIGTERM sets `signum`; a second SIGINT
    raises KeyboardInterrupt immediately; one the block never acted on is raised as
    `Interrupted` on the way out."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signum: int | None = None
        self._previous = {}

    def _handle(self, signum, frame):
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # second Ctrl-C: give up on the checkpoint
        self.signum = signum

    def __enter__(self):
        raise_unhandled_stop()  # the loop is the first place after start-up that looks
        if threading.current_thread() is threading.main_thread():  # handlers live there only
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, exc_type, exc, tb):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        if exc_type is None and self.signum is not None:
            # arrived after the loop's last look (its final step was saved): not lost
            raise Interrupted(self.signum)
        return False
