"""The stop flag the CLI's long-running commands share: set by a signal handler, which runs in the main
thread between any two of its steps, so setting it must never wait for a lock that thread may hold."""

from __future__ import annotations

import os
import signal
import threading
import time

from pepper.cli.worker import Stopping, _stop_signals


def test_a_signal_arriving_while_the_command_waits_stops_the_wait() -> None:
    with _stop_signals() as stopping:
        sender = threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGTERM))
        sender.start()
        try:
            assert stopping.wait(60)
        finally:
            sender.cancel()
    assert stopping.signum == signal.SIGTERM and not stopping.by_ctrl_c


def test_a_handler_that_sets_it_in_the_middle_of_a_wait_is_not_held_up(monkeypatch) -> None:
    # The handler's moment is any step of the waiting thread: here, each pause of the wait itself.
    stopping = Stopping()

    def pause(seconds: float) -> None:
        stopping.set()  # what the handler does, on the waiting thread, in the middle of ``wait``

    monkeypatch.setattr(time, "sleep", pause)
    assert stopping.wait(60)


def test_unset_it_waits_out_its_timeout() -> None:
    stopping = Stopping()
    assert not stopping.is_set()
    assert stopping.wait(0.01) is False
    stopping.set()
    assert stopping.is_set() and stopping.wait(0)
