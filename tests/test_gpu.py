"""GPU-slot claiming with fake device lists: no GPU needed."""

import subprocess
import sys
import textwrap

import pytest

from mmjsd import gpu
from mmjsd.errors import TrainingError


def test_two_claims_get_different_devices(tmp_path):
    first = gpu.try_claim(["0", "1"], tmp_path)
    second = gpu.try_claim(["0", "1"], tmp_path)
    assert first is not None and second is not None
    assert {first.index, second.index} == {"0", "1"}
    assert gpu.try_claim(["0", "1"], tmp_path) is None
    first.release()
    third = gpu.try_claim(["0", "1"], tmp_path)
    assert third is not None and third.index == first.index


def test_claim_is_exclusive_across_processes(tmp_path):
    """A lock held by another live process blocks that device; it frees when the process dies."""
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from pathlib import Path
            from mmjsd import gpu
            claim = gpu.try_claim(["0"], Path({str(tmp_path)!r}))
            print(claim.index, flush=True)
            time.sleep(60)
        """)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "0"
        claim = gpu.try_claim(["0", "1"], tmp_path)
        assert claim is not None and claim.index == "1"
        claim.release()
        assert gpu.try_claim(["0"], tmp_path) is None
    finally:
        holder.kill()
        holder.wait()
    assert gpu.try_claim(["0"], tmp_path).index == "0"  # the kernel released the dead holder's lock


def test_claim_gives_up_with_clear_error(tmp_path):
    held = gpu.try_claim(["0"], tmp_path)
    with pytest.raises(TrainingError, match="no free GPU"):
        gpu.claim_gpu(["0"], tmp_path, wait_s=0.2, poll_s=0.05)
    held.release()


def test_select_device_narrows_visible_devices(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5")
    blocker = gpu.try_claim(["2"], tmp_path)
    device, claim = gpu.select_device("auto", tmp_path)
    assert device == "cuda" and claim.index == "5"
    import os

    assert os.environ["CUDA_VISIBLE_DEVICES"] == "5"
    claim.release()
    blocker.release()


def test_no_gpu_falls_back_to_cpu_or_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert gpu.select_device("auto", tmp_path) == ("cpu", None)
    with pytest.raises(TrainingError, match="no GPU is visible"):
        gpu.select_device("cuda", tmp_path)
    assert gpu.select_device("cpu", tmp_path) == ("cpu", None)


def test_waiting_job_says_so_and_gets_the_device_once_released(tmp_path, capsys):
    """One GPU, two jobs: the second waits (and logs that it waits) until the first exits."""
    import threading

    held = gpu.try_claim(["0"], tmp_path)
    timer = threading.Timer(0.3, held.release)
    timer.start()
    claim = gpu.claim_gpu(["0"], tmp_path, wait_s=10, poll_s=0.05)
    timer.join()
    assert claim.index == "0"
    log = capsys.readouterr().err
    assert "held by another job" in log and "claimed GPU 0" in log
    claim.release()
