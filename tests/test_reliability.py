"""Bad input and a broken environment end in one line `mmjsd: error: ... -- fix: ...`, exit 2
(issue 15 item 4), with the full detail; temporary files of killed writers are swept (item 5)."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
import torch
import yaml

from mmjsd.cli import main
from mmjsd.core import files
from mmjsd.data import celeba, celeba_faces, download, prepare, processed

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "config.yaml"


def one_line_error(capsys, code: int) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    last = err[-1]
    assert last.startswith("mmjsd: error: ") and " -- fix: " in last, err
    assert "Traceback" not in "\n".join(err)
    return last


def edited_config(tmp_path: Path, edit) -> Path:
    raw = yaml.safe_load(CONFIG.read_text())
    edit(raw)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def ci_config(tmp_path: Path, edit=lambda raw: None) -> Path:
    """config.yaml with the ci scale's folders moved under tmp_path."""
    def both(raw):
        raw["scales"]["ci"]["paths"] = {"data": str(tmp_path / "data"), "results": str(tmp_path / "results")}
        edit(raw)
    return edited_config(tmp_path, both)


# --- configuration --------------------------------------------------------------------------
def test_learning_rate_that_yaml_reads_as_a_string_names_the_spelling(tmp_path, capsys):
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG.read_text().replace("lr: 0.001", "lr: 1e-3", 1))
    assert "lr: 1e-3" in path.read_text()
    line = one_line_error(capsys, main(["--config", str(path), "check-config"]))
    assert "lr" in line and "1.0e-3" in line and "string" in line


def test_empty_figure_texts_is_a_config_error(tmp_path, capsys):
    path = edited_config(tmp_path, lambda raw: raw["eval"]["figure"].update(texts=[]))
    line = one_line_error(capsys, main(["--config", str(path), "check-config"]))
    assert "eval.figure.texts" in line and "empty" in line


# --- damaged CelebA images --------------------------------------------------------------------
@pytest.fixture
def syn(tmp_path) -> Path:
    return celeba_faces.synthesize_folder(tmp_path / "celeba", count=12, seed=0)


def _prepare_celeba(tmp_path, folder):
    return main(["--config", str(ci_config(tmp_path)), "--scale", "ci", "prepare", "--dataset", "celeba",
                 "--input", str(folder), "--out-dir", str(tmp_path / "out")])


def test_zero_byte_jpeg(tmp_path, syn, capsys):
    (syn / celeba.IMAGE_DIR / "000003.jpg").write_bytes(b"")
    line = one_line_error(capsys, _prepare_celeba(tmp_path, syn))
    assert "000003.jpg is empty (0 bytes)" in line


def test_symlink_loop_in_the_image_folder(tmp_path, syn, capsys):
    image = syn / celeba.IMAGE_DIR / "000002.jpg"
    image.unlink()
    os.symlink(image.name, image)      # points at itself
    line = one_line_error(capsys, _prepare_celeba(tmp_path, syn))
    assert "000002.jpg" in line and "symbolic links" in line


def test_long_error_details_are_not_cut(tmp_path, syn, capsys):
    image = syn / celeba.IMAGE_DIR / "000004.jpg"
    image.write_bytes(b"\xff\xd8" + b"x" * 500)      # a JPEG start marker, then garbage
    line = one_line_error(capsys, _prepare_celeba(tmp_path, syn))
    detail = line.split("000004.jpg is not a readable JPEG (", 1)[1].split(") -- fix:")[0]
    assert len(detail) > 0 and not detail.endswith("...")


# --- the file system --------------------------------------------------------------------------
def test_full_disk_names_the_file_and_the_fix(tmp_path, capsys, monkeypatch):
    from mmjsd.data import dsprites_render

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(dsprites_render.np, "savez_compressed", no_space)
    out = tmp_path / "render.npz"
    line = one_line_error(capsys, main(["--scale", "ci", "dsprites-render", "--out", str(out)]))
    assert str(out) in line and "No space left" in line and "free space" in line
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_torch_write_failure_becomes_an_os_error_naming_the_file(tmp_path):
    target = tmp_path / "x.pt"
    with pytest.raises(OSError) as info:
        with files.atomic_path(target):
            raise RuntimeError("[enforce fail at inline_container.cc:778] . PytorchStreamWriter failed writing file data/0: file write failed")
    assert info.value.filename == str(target) and "file write failed" in info.value.strerror
    with pytest.raises(OSError) as info:      # the same full disk, seen at the end of the archive (prepare's splits)
        with files.atomic_path(target):
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 1920 vs 1814")
    assert info.value.filename == str(target) and "unexpected pos" in info.value.strerror


def test_folder_that_cannot_be_written(tmp_path, capsys, monkeypatch):
    def denied(src, dst):
        raise PermissionError(errno.EACCES, "Permission denied", str(dst))

    monkeypatch.setattr(files.os, "replace", denied)
    out = tmp_path / "runs" / "render.npz"
    line = one_line_error(capsys, main(["--scale", "ci", "dsprites-render", "--out", str(out)]))
    assert "Permission denied" in line and "writable" in line


def test_output_path_blocked_by_a_file(tmp_path, capsys):
    (tmp_path / "results").write_text("not a folder")
    line = one_line_error(capsys, main(["--scale", "ci", "dsprites-render", "--out", str(tmp_path / "results" / "render.npz")]))
    assert "results" in line and "in the way" in line


# --- GPUs -------------------------------------------------------------------------------------
@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine where CUDA cannot run")
def test_cuda_visible_devices_without_a_driver(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    code = main(["--config", str(ci_config(tmp_path)), "--scale", "ci", "train", "--dataset", "dsprites",
                 "--model", "mmjsd", "--seed", "0", "--gpu-lock-dir", str(tmp_path / "locks")])
    line = one_line_error(capsys, code)
    assert "CUDA cannot use it" in line and "--device cpu" in line
    assert not list((tmp_path / "locks").glob("*.claim"))       # the claim was given back


def test_gpu_lock_directory_that_is_a_file(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    blocker = tmp_path / "locks"
    blocker.write_text("")
    code = main(["--config", str(ci_config(tmp_path)), "--scale", "ci", "train", "--dataset", "dsprites",
                 "--model", "mmjsd", "--seed", "0", "--gpu-lock-dir", str(blocker)])
    line = one_line_error(capsys, code)
    assert "is a file, not a folder" in line and "MMJSD_GPU_LOCK_DIR" in line


# --- temporary files (item 5) -----------------------------------------------------------------
def test_temporaries_of_killed_writers_are_swept_on_the_next_write(tmp_path):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    left = tmp_path / f".train.pt.{files._HOST}.{pid}.abcd1234.tmp"
    left.write_bytes(b"half a split")
    left_dir = tmp_path / f".celeba.{files._HOST}.{pid}.abcd1234.tmp"
    left_dir.mkdir()
    (left_dir / "x.jpg").write_bytes(b"")
    live = tmp_path / f".test.pt.{files._HOST}.{os.getpid()}.abcd1234.tmp"     # a writer still at work
    live.write_bytes(b"")
    foreign = tmp_path / ".test.pt.otherhost.1.abcd1234.tmp"                    # another host's, fresh
    foreign.write_bytes(b"")
    files.write_text(tmp_path / "train.pt", "new")
    assert not left.exists() and not left_dir.exists()
    assert live.exists() and foreign.exists()
    assert (tmp_path / "train.pt").read_text() == "new"


def test_every_command_sweeps_its_scales_folders_first(tmp_path):
    """A SIGKILLed writer's temporary file deep in the results folder is gone after any mmjsd
    command of that scale, even one that writes nothing there (here: check-config)."""
    import subprocess
    import sys

    from mmjsd.cli import main

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    run_dir = tmp_path / "results" / "runs" / "dsprites" / "mmjsd" / "seed0"
    run_dir.mkdir(parents=True)
    left = run_dir / f".checkpoint.pt.{files._HOST}.{int(dead.stdout)}.abcd1234.tmp"
    left.write_bytes(b"half a checkpoint")
    config = yaml.safe_load((Path(__file__).resolve().parents[1] / "config.yaml").read_text())
    config["scales"]["ci"]["paths"] = {"data": str(tmp_path / "data"), "results": str(tmp_path / "results")}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    assert main(["--config", str(tmp_path / "config.yaml"), "--scale", "ci", "check-config"]) == 0
    assert not left.exists() and run_dir.is_dir()


# --- strict CelebA attribute and partition files (item 3) ---------------------------------------
def _attr_text(rows: list[str], count: int | None = None) -> str:
    return "\n".join([str(len(rows) if count is None else count), " ".join(celeba.ATTRIBUTE_NAMES), *rows]) + "\n"


def _row(name: str, n: int = 40, value: str = "1") -> str:
    return " ".join([name, *([value] * n)])


@pytest.mark.parametrize("rows, count, message", [
    # two row errors that cancel out in a flat count: one value short, one too many
    ([_row("1.jpg", 39), _row("2.jpg"), _row("3.jpg", 41)], None, "line 3: 40 fields"),
    ([_row("1.jpg"), _row("2.jpg"), _row("1.jpg")], None, "line 5: image 1.jpg is listed twice (first on line 3)"),
    ([_row("1.jpg"), _row("2.jpg", value="0")], None, "line 4 (2.jpg): value '0' is not -1 or 1"),
    ([_row("1.jpg"), _row("2.jpg")], 3, "line 1 says 3 rows, the file holds 2"),
    ([_row("1.jpg")], "x", "line 1 must be the number of rows"),
])
def test_attribute_file_is_checked_row_by_row(tmp_path, rows, count, message):
    from mmjsd.errors import DataError

    path = tmp_path / celeba.ATTR_FILE
    path.write_text(_attr_text(rows, count))
    with pytest.raises(DataError) as info:
        celeba.read_attributes(path)
    assert message in str(info.value) and " -- fix: " in str(info.value)


@pytest.mark.parametrize("text, message", [
    ("1.jpg 0\n2.jpg 3\n", "line 2 (2.jpg): partition '3' is not one of 0, 1, 2"),
    ("1.jpg 0\n1.jpg 1\n", "line 2: image 1.jpg is listed twice"),
    ("1.jpg 0 7\n", "line 1: 3 fields"),
])
def test_partition_file_is_checked_row_by_row(tmp_path, text, message):
    from mmjsd.errors import DataError

    path = tmp_path / celeba.PARTITION_FILE
    path.write_text(text)
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        celeba.read_partition(path)


def test_good_attribute_file_parses(tmp_path):
    path = tmp_path / celeba.ATTR_FILE
    path.write_text(_attr_text([_row("1.jpg"), _row("2.jpg", value="-1")]).replace("\n", "\r\n"))
    names, values = celeba.read_attributes(path)
    assert names == ["1.jpg", "2.jpg"] and values[0].tolist() == [1] * 40 and values[1].tolist() == [-1] * 40


# --- damaged outputs found before any job (item 2) ----------------------------------------------
def test_truncated_split_stops_the_workflow_at_parse_time_keeping_every_output(workdir, repo_env):
    import subprocess

    from mmjsd.config import load_config
    from mmjsd.core import paths as P

    config = load_config(workdir / "config.yaml", "ci")
    split = workdir / P.processed(config, "dsprites", "test")
    classifier = workdir / P.fill(P.CLASSIFIER, config, dataset="dsprites", modality="img")
    for path in (split, classifier):
        path.parent.mkdir(parents=True, exist_ok=True)
        files.torch_save(path, {"x": torch.zeros(1000)})
    split.write_bytes(split.read_bytes()[:300])           # truncated
    result = subprocess.run([str(Path(os.sys.executable).parent / "snakemake"), "-n", "all", "--config", "scale=ci",
                             "--cores", "1"], cwd=workdir, env=repo_env, capture_output=True, text=True)
    assert result.returncode != 0
    line = [l for l in result.stderr.splitlines() if l.startswith("mmjsd: error:")][0]
    assert f"--forcerun {P.processed(config, 'dsprites', 'test')}" in line
    assert "truncated" in line or "complete torch file" in line
    assert classifier.exists()


def test_zip_damage_spots_truncation(tmp_path):
    from mmjsd.pipeline.integrity import zip_damage

    path = tmp_path / "a.pt"
    files.torch_save(path, {"x": torch.arange(10000)})
    assert zip_damage(path) is None
    path.write_bytes(path.read_bytes()[:-100])
    assert zip_damage(path) is not None
    path.write_bytes(b"")
    assert zip_damage(path) == "it is empty (0 bytes)"


def test_parse_time_check_finds_bad_json_and_a_model_of_another_slot_and_lets_its_own_fix_through(tmp_path):
    """A truncated eval.json, or a model copied from another seed into a slot, stop the run before any
    job (Snakemake would delete the tables, or the slot's eval.json, first); the printed
    `--forcerun PATH` passes the check for that file, so the fix works as printed."""
    import shlex

    from mmjsd import models
    from mmjsd.config import load_config
    from mmjsd.core import paths as P
    from mmjsd.errors import DataError
    from mmjsd.pipeline.integrity import check_outputs
    import model_helpers

    config = load_config(ci_config(tmp_path), "ci")
    record = P.run_file(P.RUN_EVAL, config, "dsprites", "mmjsd", 0)
    record.parent.mkdir(parents=True)
    record.write_text('{"coherence": {"shape": ')               # truncated
    with pytest.raises(DataError, match="eval.json is damaged: it is not valid JSON") as caught:
        check_outputs(config)
    fix = str(caught.value).split("`")[1]
    assert fix == f"snakemake all --config scale=ci --forcerun {record}"
    _scan(config, argv=shlex.split(fix))                         # the printed fix is not refused by the check
    _scan(config, argv=["snakemake", "all", "-F"])
    from mmjsd.core.files import sealed

    record.write_text(json.dumps(sealed({"dataset": "dsprites", "model": "mmjsd", "seed": 1, "scale": "ci"})))   # copied from seed 1
    with pytest.raises(DataError, match=r"eval.json is damaged: it is the evaluation of another run \(seed 1\)"):
        check_outputs(config)
    record.write_text(json.dumps(sealed({"dataset": "dsprites", "model": "mmjsd", "seed": 0, "scale": "ci"})))

    slot = P.run_file(P.RUN_MODEL, config, "dsprites", "mmpoe", 0)
    slot.parent.mkdir(parents=True)
    model = model_helpers.make_model("mmpoe", "dsprites")
    models.save_model(slot, model, {"dataset": "dsprites", "model": "mmpoe", "seed": 0})
    check_outputs(config)                                        # its own slot
    models.save_model(slot, model, {"dataset": "dsprites", "model": "mmpoe", "seed": 1})
    with pytest.raises(DataError, match=r"model.pt is damaged: it holds the model of another run \(seed 1\)"):
        check_outputs(config)
    _scan(config, argv=["snakemake", "all", "--forcerun", str(slot)])


def _scan(config, config_file="config.yaml", argv=()):
    """The parse-time scan as the Snakemake command line `argv` runs it."""
    from mmjsd.pipeline.integrity import check_outputs
    from mmjsd.pipeline.startup import snakemake_request

    request = snakemake_request(list(argv))
    check_outputs(config, str(config_file), request.force_all, request.forced)


def test_folders_with_a_space_run_under_snakemake(workdir, repo_env):
    """paths.data / paths.results and the config file may hold a space: every shell command quotes them."""
    raw = yaml.safe_load((workdir / "config.yaml").read_text())
    raw["scales"]["ci"]["datasets"] = ["dsprites"]
    raw["scales"]["ci"]["data"]["dsprites"]["subset"] = 600
    raw["scales"]["ci"]["paths"] = {"data": "my data/ci", "results": "my results/ci"}
    (workdir / "my config.yaml").write_text(yaml.safe_dump(raw))
    import subprocess
    import sys

    target = "my data/ci/processed/dsprites/train.pt"
    result = subprocess.run([str(Path(sys.executable).parent / "snakemake"), target, "--configfile", "my config.yaml",
                             "--config", "scale=ci", "--cores", "1"], cwd=workdir, env=repo_env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (workdir / target).is_file()


@pytest.mark.skipif(os.geteuid() != 0, reason="chattr +i needs root")
@pytest.mark.parametrize("immutable", ["file", "folder"])
def test_an_immutable_output_stops_the_run_before_snakemake_tries_to_delete_it(tmp_path, immutable):
    """A planned job (a plain rerun, --forceall or --forcerun) whose output cannot be replaced stops
    the run before Snakemake deletes anything; the fix names what is immutable (the file or its
    folder) and works as printed."""
    import shlex
    import subprocess

    from mmjsd.config import load_config
    from mmjsd.core import paths as P
    from mmjsd.errors import DataError
    from mmjsd.pipeline.integrity import check_planned

    config = load_config(ci_config(tmp_path), "ci")
    table = P.fill(P.TABLE1, config)
    table.parent.mkdir(parents=True)
    table.write_text("dataset\n")
    plan = [("aggregate", [], [table, P.fill(P.TABLE1_MD, config)])]
    check_planned(config, "config.yaml", plan)
    target = table if immutable == "file" else table.parent
    if subprocess.run(["chattr", "+i", str(target)], capture_output=True).returncode != 0:
        pytest.skip("this file system does not support chattr +i")
    try:
        check_planned(config, "config.yaml", [])                 # nothing planned replaces it
        with pytest.raises(DataError) as info:
            check_planned(config, "config.yaml", plan)
        message = str(info.value)
        assert "table1.csv" in message and "no job was started" in message
        fix = message.split("-- fix: ")[1]
        command = fix.split("`")[1]
        assert command == f"chattr -i {shlex.quote(str(target))}", fix
        subprocess.run(command, shell=True, check=True)           # the fix, verbatim
        check_planned(config, "config.yaml", plan)
    finally:
        subprocess.run(["chattr", "-i", str(target)], check=True)


def test_snakemake_request_is_read_with_snakemakes_own_parser():
    from mmjsd.pipeline.startup import Request, snakemake_request

    request = snakemake_request(["snakemake", "-np", "all", "--forcerun", "a/b.pt", "c.json", "train", "--cores", "2"])
    assert request.dry_run and not request.force_all
    assert request.forced == {Path("a/b.pt").resolve(), Path("c.json").resolve()}     # `train` names a rule
    assert snakemake_request(["snakemake", "all", "--dry-run", "-F"]).force_all
    assert snakemake_request(["/venv/bin/snakemake", "all", "--cores", "1"]) == Request()
    assert snakemake_request(["snakemake", "all", "--forcerun=x.json"]).forced == {Path("x.json").resolve()}
    assert snakemake_request(["pytest", "-x", "--forcerun", "x.json"]) == Request()   # not a Snakemake command line


def test_logs_are_rotated_not_overwritten(tmp_path):
    from mmjsd.core.files import rotate_logs

    log = tmp_path / "train.log"
    for run in ("first", "second", "third", "fourth"):
        rotate_logs(tmp_path, keep=3)
        log.write_text(run)   # the job of this run writes its log
    assert log.read_text() == "fourth"
    assert [(tmp_path / f"train.log.{i}").read_text() for i in (1, 2, 3)] == ["third", "second", "first"]
    assert rotate_logs(tmp_path / "missing") == []


# --- the CelebA folder tracked by content (item 2) ----------------------------------------------
def _flip_first_attribute(folder: Path) -> None:
    """Change one label of the attribute file in place and give the folder back its old mtime, as
    an in-place edit does: a folder's mtime moves only when entries are added, removed or renamed."""
    stat = folder.stat()
    path = folder / celeba.ATTR_FILE
    lines = path.read_text().splitlines(keepends=True)
    fields = lines[2].split()
    fields[1] = "-1" if fields[1] == "1" else "1"
    lines[2] = " ".join(fields) + "\n"
    path.write_text("".join(lines))
    os.utime(folder, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_celeba_manifest_follows_content_not_mtimes(tmp_path, syn):
    from mmjsd.data.manifest import folder_manifest, refresh_manifest

    out = tmp_path / "manifest.txt"
    assert refresh_manifest(syn, out) is True
    text = out.read_text()
    assert str(tmp_path) not in text and "files 12 " in text          # no paths: copies give the same text
    copy = tmp_path / "copy"
    import shutil

    shutil.copytree(syn, copy)
    assert folder_manifest(copy) == text
    written = out.stat().st_mtime_ns
    os.utime(syn, ns=(1, 1))                                           # mtimes alone change nothing
    os.utime(syn / celeba.IMAGE_DIR / "000001.jpg", ns=(1, 1))
    assert refresh_manifest(syn, out) is False and out.stat().st_mtime_ns == written
    _flip_first_attribute(syn)                                         # content changed in place
    assert refresh_manifest(syn, out) is True and out.read_text() != text
    image = syn / celeba.IMAGE_DIR / "000002.jpg"
    image.write_bytes(image.read_bytes() + b"\0")
    assert folder_manifest(syn) != out.read_text()


def test_manifest_refuses_zero_byte_and_looping_images(syn):
    from mmjsd.data.manifest import folder_manifest
    from mmjsd.errors import DataError

    image = syn / celeba.IMAGE_DIR / "000002.jpg"
    image.unlink()
    os.symlink(image.name, image)
    with pytest.raises(DataError, match="000002.jpg cannot be read .*symbolic links.*-- fix: remove or repair"):
        folder_manifest(syn)
    image.unlink()
    image.write_bytes(b"")
    with pytest.raises(DataError, match=r"000002.jpg is empty \(0 bytes\)"):
        folder_manifest(syn)


def _snakemake(workdir, env, *args):
    import subprocess
    import sys

    return subprocess.run([str(Path(sys.executable).parent / "snakemake"), *args, "--config", "scale=ci", "--cores", "1"],
                          cwd=workdir, env=env, capture_output=True, text=True, timeout=600)


def test_snakemake_reruns_prepare_when_the_celeba_folder_content_changes(workdir, repo_env, tmp_path):
    """The user's CelebA folder (`source: folder`): prepare depends on its manifest. In-place edits
    rerun it, new mtimes alone do not, and a zero-byte image stops the run at parse time with every
    processed split kept."""
    folder = celeba_faces.synthesize_folder(tmp_path / "celeba", count=30, seed=0)
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    config["scales"]["ci"]["datasets"] = ["celeba"]
    config["scales"]["ci"]["data"]["celeba"] = {"source": "folder", "root": str(folder)}
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    target = "data/ci/processed/celeba/train.pt"

    built = _snakemake(workdir, repo_env, target)
    assert built.returncode == 0, built.stderr[-3000:]
    manifest = workdir / "data/ci/raw/celeba_manifest.txt"
    assert "input: data/ci/raw/celeba_manifest.txt" in built.stdout + built.stderr
    splits = {p: p.read_bytes() for p in (workdir / "data/ci/processed/celeba").glob("*.pt")}
    assert len(splits) == 7      # train, test and its halves, val and its halves

    os.utime(folder, None)                                     # a new folder mtime, same content
    os.utime(folder / celeba.IMAGE_DIR / "000003.jpg", None)
    assert "Nothing to be done" in (lambda r: r.stdout + r.stderr)(_snakemake(workdir, repo_env, "-n", target))

    (folder / celeba.IMAGE_DIR / "notes.txt").write_text("a stray file")   # not an image: prepare never reads it
    assert "Nothing to be done" in (lambda r: r.stdout + r.stderr)(_snakemake(workdir, repo_env, "-n", target))

    before = manifest.read_bytes()
    _flip_first_attribute(folder)                              # an in-place edit: the folder's mtime is unchanged
    dry = _snakemake(workdir, repo_env, "-n", target)
    assert dry.returncode == 0 and "a real run reruns `prepare`" in dry.stderr, dry.stderr[-2000:]
    assert manifest.read_bytes() == before                     # a dry run has no side effect

    def stopped_at_parse_time(message):
        stopped = _snakemake(workdir, repo_env, target)
        assert stopped.returncode != 0
        line = next(l for l in stopped.stderr.splitlines() if l.startswith("mmjsd: error:"))
        assert message in line and "no job was started" in line and " -- fix: " in line, line
        assert {p: p.read_bytes() for p in splits} == splits  # nothing was deleted
        assert manifest.read_bytes() == before

    image = folder / celeba.IMAGE_DIR / "000004.jpg"
    good = image.read_bytes()
    image.write_bytes(b"")
    stopped_at_parse_time("000004.jpg is empty (0 bytes)")
    image.write_bytes(b"\xff\xd8 not a JPEG" * 50)            # a bad JPEG: found by decoding, as prepare would
    stopped_at_parse_time("000004.jpg is not a readable JPEG")
    image.write_bytes(good)
    attributes = folder / celeba.ATTR_FILE
    text = attributes.read_text()
    lines = text.splitlines(keepends=True)
    lines[3] = lines[3].replace(" -1", " 2", 1) if " -1" in lines[3] else lines[3].replace(" 1", " 2", 1)
    attributes.write_text("".join(lines))                      # an attribute value that is neither 1 nor -1
    stopped_at_parse_time(celeba.ATTR_FILE)
    attributes.write_text(text)

    rebuilt = _snakemake(workdir, repo_env, target)            # the folder is valid again: prepare reruns
    assert rebuilt.returncode == 0 and "rule prepare:" in rebuilt.stdout + rebuilt.stderr
    assert manifest.read_bytes() != before


# --- fingerprints: every artifact bound to what made it (item 1) --------------------------------
def _tiny_ci_config(tmp_path: Path, edit=lambda raw: None, name: str = "base") -> Path:
    """ci with a 600-row dSprites render and only dSprites (seconds per step), as tmp_path/NAME.yaml."""
    def tiny(raw):
        raw["scales"]["ci"]["datasets"] = ["dsprites"]
        raw["scales"]["ci"]["data"]["dsprites"]["subset"] = 600
        edit(raw)
    text = ci_config(tmp_path, tiny).read_text()     # ci_config writes tmp_path/config.yaml: copy it away
    path = tmp_path / f"{name}.yaml"
    (tmp_path / "config.yaml").unlink()
    path.write_text(text)
    return path


def _mmjsd(config_path: Path, *args: str) -> int:
    return main(["--config", str(config_path), "--scale", "ci", *args])


@pytest.fixture
def prepared_ci(tmp_path):
    config_path = _tiny_ci_config(tmp_path)
    from mmjsd.config import load_config
    from mmjsd.core import paths as P

    config = load_config(config_path, "ci")
    raw = P.dsprites_input(config)
    assert _mmjsd(config_path, "dsprites-render", "--out", str(raw)) == 0
    assert _mmjsd(config_path, "prepare", "--dataset", "dsprites", "--input", str(raw),
                  "--out-dir", str(P.processed(config, "dsprites", "train").parent)) == 0
    return config_path, config


def _train_cli(config_path: Path) -> int:
    return _mmjsd(config_path, "train", "--dataset", "dsprites", "--model", "mmjsd", "--seed", "0",
                  "--device", "cpu", "--max-steps", "1")


def test_train_refuses_a_split_made_under_other_settings_data_or_code(prepared_ci, tmp_path, capsys, monkeypatch):
    config_path, config = prepared_ci
    from mmjsd.core import paths as P

    split = P.processed(config, "dsprites", "train")
    fix = f"`snakemake all --config scale=ci --configfile {config_path} --forcerun {split}`"
    assert _train_cli(config_path) == 0
    capsys.readouterr()

    # another data seed in the config (as if prepare had not rerun)
    other = _tiny_ci_config(tmp_path, lambda raw: raw["scales"]["ci"]["data"]["dsprites"].update(seed=5), "other")
    line = one_line_error(capsys, _train_cli(other))
    assert f"processed split {split} was made from other" in line and "settings.data.dsprites.seed" in line
    assert line.endswith(fix.replace(str(config_path), str(other)))

    # other raw data on disk: the render's bytes changed
    raw = P.dsprites_input(config)
    original = raw.read_bytes()
    assert _mmjsd(other, "dsprites-render", "--out", str(raw)) == 0 and raw.read_bytes() != original
    line = one_line_error(capsys, _train_cli(config_path))
    assert "changed: input_sha256" in line and line.endswith(fix)
    raw.write_bytes(original)

    # other data code (the digest of src/mmjsd/data/*.py)
    real = processed.code_digest        # what the split's expected fingerprint reads
    monkeypatch.setattr(processed, "code_digest", lambda step: "edited" if step == "prepare" else real(step))
    line = one_line_error(capsys, _train_cli(config_path))
    assert "changed: code" in line and line.endswith(fix)
    monkeypatch.undo()

    # a split from before fingerprints
    stored = torch.load(split, weights_only=True)
    del stored["fingerprint"]
    files.torch_save(split, processed.canonical(stored))      # its checksum rewritten: only the fingerprint is gone
    line = one_line_error(capsys, _train_cli(config_path))
    assert "records no fingerprint" in line and line.endswith(fix)


def test_evaluate_refuses_a_stale_or_damaged_classifier_and_records_what_it_read(prepared_ci, tmp_path, capsys):
    import json

    from mmjsd.core import paths as P
    from mmjsd.models import build_model, expected_run, model_spec, save_model

    config_path, config = prepared_ci
    classifier = {m: P.fill(P.CLASSIFIER, config, dataset="dsprites", modality=m) for m in ("img", "text")}
    for modality in ("img", "text"):
        assert _mmjsd(config_path, "train-classifier", "--dataset", "dsprites", "--modality", modality,
                      "--device", "cpu", "--threads", "1") == 0
    first = classifier["img"].read_bytes()
    assert _mmjsd(config_path, "train-classifier", "--dataset", "dsprites", "--modality", "img",
                  "--device", "cpu", "--threads", "1") == 0
    assert classifier["img"].read_bytes() == first            # same seed on the CPU, same bytes
    torch.manual_seed(0)
    save_model(P.run_file(P.RUN_MODEL, config, "dsprites", "mmjsd", 0),
               build_model(model_spec(config, "mmjsd", "dsprites", 1, 64, 71)),
               fingerprint=expected_run(config, "dsprites", "mmjsd", 0))

    def evaluate(path):
        return _mmjsd(path, "evaluate", "--dataset", "dsprites", "--model", "mmjsd", "--seed", "0",
                      "--device", "cpu", "--threads", "1")

    eval_path = P.run_file(P.RUN_EVAL, config, "dsprites", "mmjsd", 0)
    assert evaluate(config_path) == 0
    record = json.loads(eval_path.read_text())["fingerprint"]
    assert record["model_sha256"] == files.file_sha256(P.run_file(P.RUN_MODEL, config, "dsprites", "mmjsd", 0))
    assert record["classifiers_sha256"]["img"] == files.file_sha256(classifier["img"])
    assert record["splits_sha256"]["test"] == files.file_sha256(P.processed(config, "dsprites", "test"))
    assert record["settings"]["eval.latent_fit_samples"] == 16 and len(record["code"]) == 16
    assert str(tmp_path) not in json.dumps(record)
    text = eval_path.read_bytes()
    assert evaluate(config_path) == 0 and eval_path.read_bytes() == text
    capsys.readouterr()

    # the classifier's settings changed since it was trained
    other = _tiny_ci_config(tmp_path, lambda raw: raw["scales"]["ci"]["classifier"]["dsprites"].update(lr=0.01), "other")
    line = one_line_error(capsys, evaluate(other))
    assert f"classifier {classifier['img']} was made from other" in line and "settings.classifier.dsprites.lr" in line
    assert line.endswith(f"`snakemake all --config scale=ci --configfile {other} --forcerun {classifier['img']}`")

    # the splits it learnt from changed (prepare reran under another data seed)
    reseeded = _tiny_ci_config(tmp_path, lambda raw: raw["scales"]["ci"]["data"]["dsprites"].update(seed=5), "reseeded")
    assert _mmjsd(reseeded, "prepare", "--dataset", "dsprites", "--input", str(P.dsprites_input(config)),
                  "--out-dir", str(P.processed(config, "dsprites", "train").parent)) == 0
    line = one_line_error(capsys, evaluate(reseeded))
    assert "changed: splits_sha256.test, splits_sha256.train" in line

    # prepared again under the first config: the same bytes as before, so the classifiers fit again
    assert _mmjsd(config_path, "prepare", "--dataset", "dsprites", "--input", str(P.dsprites_input(config)),
                  "--out-dir", str(P.processed(config, "dsprites", "train").parent)) == 0
    assert evaluate(config_path) == 0 and eval_path.read_bytes() == text

    # damage inside the weights (torch.load does not notice it)
    blob = torch.load(classifier["text"], weights_only=True)
    next(iter(blob["state_dict"].values())).view(-1)[0] += 1.0
    files.torch_save(classifier["text"], blob)
    line = one_line_error(capsys, evaluate(config_path))
    assert "is damaged" in line and f"--forcerun {classifier['text']}" in line


def test_a_split_edited_in_place_stops_the_run_before_its_consumers_are_deleted(tmp_path):
    """One label changed in a processed test split (same size, valid file, newer than the
    classifiers built from it): the check of Snakemake's plan reads its checksum before Snakemake
    would delete the classifiers, and the printed fix names this scale and rebuilds exactly that split."""

    from mmjsd.config import load_config
    from mmjsd.core import paths as P
    from mmjsd.data import dsprites_render
    from mmjsd.errors import DataError
    from mmjsd.pipeline.integrity import check_planned

    config_file = ci_config(tmp_path)
    config = load_config(config_file, "ci")
    raw = P.dsprites_input(config)
    dsprites_render.save_render_npz(raw, dsprites_render.render(config["data"]["dsprites"]["subset"], 0))
    out_dir = P.processed(config, "dsprites", "test").parent
    prepare.prepare("dsprites", raw, out_dir, config["data"]["dsprites"])
    classifier = P.fill(P.CLASSIFIER, config, dataset="dsprites", modality="img")
    classifier.parent.mkdir(parents=True)
    torch.save({"made from": "the splits"}, classifier)
    made = classifier.read_bytes()
    split_path = P.processed(config, "dsprites", "test")
    # what Snakemake plans once the split is newer than the classifier: retrain it from the splits
    plan = [("train_classifier", [P.processed(config, "dsprites", "train"), split_path], [classifier])]
    check_planned(config, str(config_file), plan)
    split = torch.load(split_path, weights_only=False)
    split["labels"][0, 0] = (split["labels"][0, 0] + 1) % 3
    with open(split_path, "wb") as handle:
        torch.save(split, handle)
    with pytest.raises(DataError) as info:
        check_planned(config, str(config_file), plan)
    message = str(info.value)
    assert "checksum" in message and "the train_classifier job that reads it was not started and nothing was deleted" in message
    fix = message.split("`")[1]
    assert fix == f"snakemake all --config scale=ci --configfile {config_file} --forcerun {split_path}", fix
    # the fix's own run rebuilds the split first: nothing planned reads the damaged file
    check_planned(config, str(config_file), plan + [("prepare", [raw], [P.processed(config, "dsprites", n) for n in P.SPLITS])])
    assert classifier.read_bytes() == made


def test_splits_lost_to_a_killed_rebuild_are_named_with_the_fix(tmp_path, monkeypatch):
    """A forced `prepare` killed after Snakemake deleted its outputs (its markers stay in
    .snakemake/incomplete): the plain run must not say "Nothing to be done" with the splits gone;
    the scan names them and the command that rebuilds them. Splits deleted on purpose are fine."""
    import base64
    import shlex

    from mmjsd.config import load_config
    from mmjsd.core import paths as P
    from mmjsd.errors import DataError
    from mmjsd.pipeline.integrity import check_outputs

    monkeypatch.chdir(tmp_path)
    config_file = ci_config(tmp_path)
    config = load_config(config_file, "ci")
    model = P.run_file(P.RUN_MODEL, config, "dsprites", "mmjsd", 0)
    model.parent.mkdir(parents=True)
    torch.save({"fingerprint": {"dataset": "dsprites", "model": "mmjsd", "seed": 0}}, model)
    check_outputs(config, str(config_file))          # splits deleted after training, no marker: fine
    markers = tmp_path / ".snakemake" / "incomplete"
    markers.mkdir(parents=True)
    for name in P.SPLITS:                            # what Snakemake leaves when the job is killed
        path = str(P.processed(config, "dsprites", name))
        (markers / base64.b64encode(path.encode()).decode()).write_bytes(b"")
    with pytest.raises(DataError) as info:
        check_outputs(config, str(config_file))
    message = str(info.value)
    assert "the prepare job dsprites was interrupted: 7 of its outputs are missing" in message and "no job was started" in message
    fix = message.split("`")[1]
    assert fix.startswith(f"snakemake all --config scale=ci --configfile {config_file} --forcerun ")
    _scan(config, config_file, argv=shlex.split(fix))
    (tmp_path / ".snakemake" / "locks").mkdir()
    (tmp_path / ".snakemake" / "locks" / "0.input.lock").write_text("")
    check_outputs(config, str(config_file))          # a run in flight (or one killed, before --unlock): its own markers
