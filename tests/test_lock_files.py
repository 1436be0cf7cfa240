"""The lock files: every pin carries hashes, workflow/hash_lock.py reads them right, and the
platform markers let the lock install on Linux x86-64, Linux aarch64 and macOS arm64.

The platform checks are offline: markers are evaluated with packaging.markers for each platform's
environment, and each applicable pin's Requires-Dist is read from the installed distribution (the
environment is installed from this lock; pure-Python and torch's metadata are the same on every
platform). `pip install --dry-run --platform ...` is no substitute: pip evaluates markers for the
host, not the target (pypa/pip#6117), and this machine's local index holds Linux x86-64 files only.
Whether the index has a wheel for every platform is checked by `python workflow/hash_lock.py
--platforms` (the index's listing, no downloads), and on every regeneration.
"""

import importlib.util
import re
import tomllib
from importlib import metadata

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from conftest import REPO

spec = importlib.util.spec_from_file_location("hash_lock", REPO / "workflow" / "hash_lock.py")
hash_lock = importlib.util.module_from_spec(spec)
spec.loader.exec_module(hash_lock)

PAGE = """<!DOCTYPE html><html><body>
<a href="../../files/zc.lockfile-4.0-py3-none-any.whl#sha256={a}">zc.lockfile-4.0-py3-none-any.whl</a>
<a href="../../files/zc_lockfile-4.0.tar.gz#sha256={b}">zc_lockfile-4.0.tar.gz</a>
<a href="../../files/zc.lockfile-4.0.1-py3-none-any.whl#sha256={c}">zc.lockfile-4.0.1-py3-none-any.whl</a>
<a href="../../files/zc.lockfile-14.0-py3-none-any.whl#sha256={c}">zc.lockfile-14.0-py3-none-any.whl</a>
</body></html>""".format(a="a" * 64, b="b" * 64, c="c" * 64)


def test_every_pin_of_both_lock_files_has_a_hash():
    for path in hash_lock.LOCK_FILES:
        text = path.read_text()
        assert hash_lock.unhashed(text) == [], f"{path.name}: run python workflow/hash_lock.py"
        assert sum(line.startswith("--hash=") or line.strip().startswith("--hash=sha256:") for line in text.splitlines()) > 0
    assert "-r requirements.txt" in (REPO / "requirements-dev.txt").read_text()


def test_one_version_s_files_are_picked_from_the_index_page():
    files = hash_lock.version_files("zc.lockfile", "4.0", PAGE)
    assert files == {"zc.lockfile-4.0-py3-none-any.whl": "a" * 64, "zc_lockfile-4.0.tar.gz": "b" * 64}


def test_rewriting_keeps_comments_and_includes_and_replaces_old_hashes():
    text = "# a comment\n-r requirements.txt\nzc.lockfile==4.0 \\\n    --hash=sha256:" + "d" * 64 + "\n"
    entries = hash_lock.parse(text)
    assert entries == ["# a comment", "-r requirements.txt", hash_lock.Pin("zc.lockfile", "4.0")]
    out = hash_lock.render(entries, {("zc.lockfile", "4.0"): hash_lock.version_files("zc.lockfile", "4.0", PAGE)})
    assert out == ("# a comment\n-r requirements.txt\nzc.lockfile==4.0 \\\n"
                   f"    --hash=sha256:{'a' * 64} \\\n    --hash=sha256:{'b' * 64}\n")
    assert hash_lock.unhashed(out) == [] and hash_lock.unhashed(text.split(" \\")[0] + "\n") == ["zc.lockfile==4.0"]


def test_rewriting_keeps_a_pin_s_marker():
    text = 'triton==3.8.0 ; platform_system == "Linux" and python_version < "3.15" \\\n    --hash=sha256:' + "d" * 64 + "\n"
    entries = hash_lock.parse(text)
    assert entries == [hash_lock.Pin("triton", "3.8.0", 'platform_system == "Linux" and python_version < "3.15"')]
    out = hash_lock.render(entries, {("triton", "3.8.0"): {"triton-3.8.0-cp311-cp311-manylinux_2_28_x86_64.whl": "a" * 64}})
    assert out == f'triton==3.8.0 ; platform_system == "Linux" and python_version < "3.15" \\\n    --hash=sha256:{"a" * 64}\n'
    assert hash_lock.unhashed(out) == []
    # the lock itself survives a rewrite unchanged (same hashes in, same text out)
    for path in hash_lock.LOCK_FILES:
        text = path.read_text()
        hashes = {}
        for pin, digests in _pin_hashes(text).items():
            hashes[pin] = {f"file{i}": d for i, d in enumerate(digests)}
        assert hash_lock.render(hash_lock.parse(text), hashes) == text


def _pin_hashes(text: str) -> dict[tuple[str, str], list[str]]:
    found, current = {}, None
    for line in text.splitlines():
        pin = hash_lock.read_pin(line)
        if pin:
            current = found.setdefault((pin.name, pin.version), [])
        elif line.strip().startswith("--hash=sha256:") and current is not None:
            current.append(line.strip().split(":", 1)[1].rstrip(" \\"))
    return found


CUDA = re.compile(r"^(nvidia-|triton$|cuda-)")   # torch's CUDA libraries and what they pull in
LOCK = hash_lock.pins((REPO / "requirements.txt").read_text())


def test_a_wheel_is_picked_by_its_platform_tags():
    linux_only = ["triton-3.8.0-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl",
                  "triton-3.8.0-cp311-cp311-manylinux_2_27_aarch64.manylinux_2_28_aarch64.whl"]
    assert hash_lock.platform_gaps(hash_lock.Pin("triton", "3.8.0"), linux_only) == ["macos-arm64"]
    assert hash_lock.platform_gaps(hash_lock.Pin("triton", "3.8.0", 'platform_system == "Linux"'), linux_only) == []
    x86 = ["nvidia_cufile-1.15.1.6-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl"]
    assert hash_lock.platform_gaps(hash_lock.Pin("nvidia-cufile", "1.15.1.6", 'platform_system == "Linux"'), x86) == ["linux-aarch64"]
    assert hash_lock.platform_gaps(hash_lock.Pin("six", "1.17.0"), ["six-1.17.0-py2.py3-none-any.whl"]) == []
    assert hash_lock.platform_gaps(hash_lock.Pin("connection_pool", "0.0.3"), ["connection_pool-0.0.3.tar.gz"]) == []
    mac = ["torch-2.14.1-cp311-cp311-macosx_14_0_arm64.whl", "torch-2.14.1-cp312-cp312-manylinux_2_28_x86_64.whl"]
    assert hash_lock.platform_gaps(hash_lock.Pin("torch", "2.14.1"), mac) == ["linux-x86_64", "linux-aarch64"]


def test_cuda_pins_apply_on_linux_only_and_every_other_pin_everywhere():
    """macOS skips torch's CUDA libraries (no wheels there, torch does not ask for them); Linux
    aarch64 keeps them: torch's aarch64 wheel requires them as its x86-64 wheel does, and the index
    has aarch64 wheels of each (a marker naming x86_64 would leave torch's requirements unpinned
    there, which hash-checking pip refuses)."""
    assert len([pin for pin in LOCK if CUDA.match(pin.name)]) >= 17
    for pin in LOCK:
        where = {name for name in hash_lock.PLATFORMS if pin.applies(name)}
        if CUDA.match(pin.name):
            assert where == {"linux-x86_64", "linux-aarch64"}, pin
        else:
            assert not pin.marker and where == set(hash_lock.PLATFORMS), pin


def _installed(pins):
    wrong = []
    for pin in pins:
        try:
            if Version(metadata.version(pin.name)) != Version(pin.version):
                wrong.append(f"{pin.name} {metadata.version(pin.name)} (lock: {pin.version})")
        except metadata.PackageNotFoundError:
            if pin.applies("linux-x86_64"):
                wrong.append(f"{pin.name} (not installed)")
    if wrong:
        pytest.skip(f"this environment is not installed from requirements.txt, so its metadata "
                    f"does not describe the lock: {', '.join(wrong[:5])}")


def _requires(name: str) -> list[str]:
    return metadata.distribution(name).requires or []


def test_cuda_pins_carry_torch_s_own_markers():
    """Where torch's METADATA asks for a pinned package under a marker, the pin's marker agrees
    with it on each platform."""
    _installed([pin for pin in LOCK if pin.name == "torch"])
    by_name = {hash_lock.normalise(pin.name): pin for pin in LOCK}
    checked = 0
    for text in _requires("torch"):
        req = Requirement(text)
        pin = by_name.get(hash_lock.normalise(req.name))
        if req.marker is None or pin is None or "extra" in str(req.marker):
            continue
        for name, platform in hash_lock.PLATFORMS.items():
            assert pin.applies(name) == req.marker.evaluate(platform.environment), (pin, name)
        checked += 1
    assert checked >= 6   # cuda-toolkit, cuda-bindings, nvidia-cudnn/-cusparselt/-nccl/-nvshmem, triton


@pytest.mark.parametrize("platform", list(hash_lock.PLATFORMS))
def test_every_requirement_of_the_lock_is_pinned_where_it_applies(platform):
    """What pip checks in hash-checking mode: on each platform, every requirement of every pin that
    applies there (its markers evaluated for that platform) names a pin that applies there too, in
    the required range: no needed package has a marker that leaves it out."""
    _installed(LOCK)
    assert hash_lock.unmet_requirements(LOCK, platform, _requires) == []


def test_a_marker_that_leaves_out_a_needed_package_is_caught():
    _installed(LOCK)
    x86_only = [pin._replace(marker=f'{pin.marker} and platform_machine == "x86_64"') if CUDA.match(pin.name) else pin
                for pin in LOCK]
    unmet = hash_lock.unmet_requirements(x86_only, "linux-aarch64", _requires)
    assert any(line.startswith("torch==") and "nvidia-cudnn-cu13" in line for line in unmet), unmet
    assert hash_lock.unmet_requirements(x86_only, "linux-x86_64", _requires) == []
    assert hash_lock.unmet_requirements(x86_only, "macos-arm64", _requires) == []


def test_pyproject_dependencies_are_pinned_in_range_on_every_platform():
    """`pip install .` and `pip install -r requirements.txt` agree: each range in pyproject.toml
    holds its package's pin, and the pin applies on every platform."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    locks = {"": LOCK, "dev": hash_lock.pins((REPO / "requirements-dev.txt").read_text()), "slurm": LOCK}
    groups = {"": project["dependencies"], **project["optional-dependencies"]}
    for group, requirements in groups.items():
        pinned = {hash_lock.normalise(pin.name): pin for pin in locks[group]}
        for text in requirements:
            req = Requirement(text)
            pin = pinned.get(hash_lock.normalise(req.name))
            assert pin is not None, f"{text} ({group or 'dependencies'}) has no pin in the lock"
            assert req.specifier.contains(pin.version, prereleases=True), f"{text}: the lock pins {pin.version}"
            assert all(pin.applies(name) for name in hash_lock.PLATFORMS), pin
