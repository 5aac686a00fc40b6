"""A worker stores what it measures of its agents at every sample, for the other processes sharing the store."""

from __future__ import annotations

import pepper
from pepper.core import ResourceMonitor
from pepper.engine.sampler import IN_PROCESS
from tests.support import eventually

FAST = {"poll_interval": "20ms", "sample_interval": "50ms", "heartbeat_interval": "100ms", "shutdown_timeout": "2s"}


def test_an_agents_stored_usage_is_renewed_at_every_sample_and_follows_its_working_directory(tmp_path):
    db = str(tmp_path / "u.db")
    with pepper.Runtime(db=db, home=str(tmp_path / "worker"), **FAST) as worker, \
            pepper.Runtime(db=db, home=str(tmp_path / "asker"), **FAST) as asker:  # fmt: skip
        pepper.agent("writer", task_types=["t"], runtime=worker)(lambda task: None)
        pepper.agent("quiet", task_types=["t"], runtime=worker)(lambda task: None)
        worker.start()
        monitor = ResourceMonitor(asker)  # the agents run on the other worker: their stored figures are read

        first = eventually(lambda: (u := monitor.get_usage("writer")).sampled_at is not None and u, "a first sample")
        assert first.worker_id == worker.worker_id
        assert first["storage"].value == 0.0  # its working directory does not exist yet
        assert first["cpu"].value is None and first["cpu"].reason == IN_PROCESS
        assert first["memory"].value is None and first["memory"].reason == IN_PROCESS
        # Unchanged figures are stored again at every sample: their time says how fresh they are
        again = eventually(lambda: (u := monitor.get_usage("writer")).sampled_at > first.sampled_at and u, "a sample")
        assert again.measurements == first.measurements

        folder = tmp_path / "worker" / "agents" / "writer"
        folder.mkdir(parents=True)
        (folder / "data.bin").write_bytes(b"x" * (2 * 2**20))
        grown = eventually(lambda: (u := monitor.get_usage("writer"))["storage"].value == 2.0 and u, "2 MB stored")
        assert grown.sampled_at > again.sampled_at
        assert grown["cpu"] == first["cpu"] and grown["memory"] == first["memory"]
        (folder / "data.bin").unlink()
        eventually(lambda: monitor.get_usage("writer")["storage"].value == 0.0, "the directory emptied")
        # The other agent's figures never changed, and are stored still
        quiet = monitor.get_usage("quiet")
        assert quiet["storage"].value == 0.0 and quiet.sampled_at > first.sampled_at

        # Asked in the worker itself, the agent is measured there and then
        here = ResourceMonitor(worker).get_usage("writer")
        assert here["storage"].value == 0.0 and here.sampled_at >= grown.sampled_at
