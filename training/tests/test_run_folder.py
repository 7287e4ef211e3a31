"""The run folder's lock: one process per folder, released when its holder dies."""
import os
import signal
import subprocess
import sys

from training.tests.fakes import FakeAgent
from training.tests.test_train import CARTPOLE, REPO
from training.train import main

HOLD_LOCK = ("import sys, time; from pathlib import Path; from training.run_folder import RunFolder; "
             "folder = RunFolder(Path(sys.argv[1]), None); assert folder.lock() is None; "
             "print('locked', flush=True); time.sleep(600)")


def test_second_process_on_a_folder_exits_2_naming_the_holder_until_the_holder_dies(tmp_path, capsys):
    logdir = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(logdir)], cwd=REPO, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        argv = [*CARTPOLE, "--logdir", str(logdir), "--steps", "300", "--set", "train_fill=64"]
        assert main(argv, agent_class=FakeAgent) == 2
        error = capsys.readouterr().err
        assert f"pid {holder.pid}" in error and "in use by another run" in error and "started 20" in error
        assert sorted(p.name for p in logdir.iterdir()) == ["run.lock"], "nothing written beside the lock"
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert main(argv, agent_class=FakeAgent) == 0, "a killed holder leaves no stale lock"
    assert f"pid {os.getpid()}" in (logdir / "run.lock").read_text()
    assert (logdir / "done.json").exists()
