"""GPU-slot claiming with fake device lists: no GPU needed."""

import subprocess
import sys
import textwrap

import pytest

from mmjsd.errors import TrainingError
from mmjsd.training import gpu


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
            from mmjsd.training import gpu
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
    monkeypatch.setattr(gpu, "_cuda_problem", lambda: None)   # as if a driver were there
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
    claim = gpu.claim_gpu(["0"], tmp_path, poll_s=0.05)   # default: no deadline
    timer.join()
    assert claim.index == "0"
    log = capsys.readouterr().err
    assert "held by other jobs" in log and "without a deadline" in log and "claimed GPU 0" in log
    claim.release()


# --- shares of a device (issue 12 item 4) --------------------------------------------------
def test_quarter_shares_pack_four_jobs_per_device(tmp_path):
    claims = [gpu.try_claim(["0", "1"], tmp_path, share=0.25) for _ in range(8)]
    assert all(c is not None for c in claims)
    assert sorted(c.index for c in claims) == ["0"] * 4 + ["1"] * 4
    assert gpu.try_claim(["0", "1"], tmp_path, share=0.25) is None      # 2 devices = 8 quarter jobs
    claims[0].release()
    again = gpu.try_claim(["0", "1"], tmp_path, share=0.25)
    assert again is not None and again.index == claims[0].index
    for claim in claims[1:] + [again]:
        claim.release()
    assert list(tmp_path.glob("*.claim")) == []


def test_best_fit_keeps_a_whole_device_free_for_a_full_job(tmp_path):
    small = [gpu.try_claim(["0", "1"], tmp_path, share=0.25) for _ in range(3)]
    assert {c.index for c in small} == {"0"}                  # packed onto the fullest device that fits
    full = gpu.try_claim(["0", "1"], tmp_path, share=1.0)
    assert full is not None and full.index == "1"
    assert gpu.try_claim(["0", "1"], tmp_path, share=0.5) is None      # 0.25 left on device 0
    assert gpu.try_claim(["0", "1"], tmp_path, share=0.25).index == "0"


def test_share_of_a_killed_job_is_freed(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import time
            from pathlib import Path
            from mmjsd.training import gpu
            claim = gpu.try_claim(["0"], Path({str(tmp_path)!r}), share=0.6)
            print(claim.index, flush=True)
            time.sleep(60)
        """)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "0"
        assert gpu.try_claim(["0"], tmp_path, share=0.5) is None
        gpu.try_claim(["0"], tmp_path, share=0.4).release()
    finally:
        holder.kill()
        holder.wait()
    full = gpu.try_claim(["0"], tmp_path, share=1.0)      # the dead job's claim file is swept
    assert full is not None
    full.release()


def test_share_must_be_a_fraction_of_one_device(tmp_path):
    with pytest.raises(TrainingError, match="outside"):
        gpu.try_claim(["0"], tmp_path, share=1.5)
    assert gpu.share_units(0.25) == 25 and gpu.share_units(1 / 3) == 34 and gpu.share_units(0.001) == 1


def test_snakemake_pool_means_devices(tmp_path):
    # --resources gpu=N: N devices, whatever is visible; else the visible count; CPU machine: 0.
    assert gpu.snakemake_gpu_units(2, visible=0) == 200
    assert gpu.snakemake_gpu_units(None, visible=2) == 200
    assert gpu.snakemake_gpu_units(None, visible=0) == 0
    assert gpu.job_gpu_units(0.25, pool=200) == 25 and gpu.job_gpu_units(1.0, pool=100) == 100
    assert gpu.job_gpu_units(0.25, pool=0) == 0


def test_select_device_takes_the_configured_share(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    monkeypatch.setattr(gpu, "_cuda_problem", lambda: None)   # as if a driver were there
    config = {"resources": {"gpu_share": {"dsprites": 0.5, "celeba": 1.0}}}
    first = gpu.select_device("auto", tmp_path, share=gpu.config_share(config, "dsprites"))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    second = gpu.select_device("auto", tmp_path, share=gpu.config_share(config, "dsprites"))
    assert first[0] == second[0] == "cuda" and first[1].index == second[1].index == "3"
    assert gpu.try_claim(["3"], tmp_path, share=gpu.config_share(config, "celeba")) is None
    first[1].release()
    second[1].release()


def test_slurm_jobs_get_their_own_lock_folder(monkeypatch):
    """SLURM narrows each job's devices (both may call theirs 0): their locks must not meet."""
    monkeypatch.delenv(gpu.LOCK_DIR_ENV, raising=False)
    monkeypatch.setenv("SLURM_JOB_ID", "4711")
    assert gpu.default_lock_dir().name == "mmjsd-gpu-locks-slurm4711"
    monkeypatch.delenv("SLURM_JOB_ID")
    assert gpu.default_lock_dir().name == "mmjsd-gpu-locks"


def test_a_cpu_run_records_its_bf16_path(monkeypatch, tmp_path):
    """The bytes of a bf16 CPU run repeat only on the same kernels: every record says which."""
    from mmjsd.training import gpu

    for flags, path in (("fpu avx512f amx_bf16 amx_tile avx512_bf16", "amx"), ("fpu avx512f avx512_bf16", "avx512_bf16"),
                        ("fpu avx2", "none")):
        info = tmp_path / f"cpuinfo-{path}"
        info.write_text(f"processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: {flags}\n")
        real = gpu.Path
        monkeypatch.setattr(gpu, "Path", lambda p, info=info, real=real: info if str(p) == "/proc/cpuinfo" else real(p))
        assert gpu.cpu_bf16_path() == path
        assert gpu.device_name("cpu").endswith(f"cores, bf16 path {path})")
