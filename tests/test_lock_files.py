"""The lock files: every pin carries hashes, and workflow/hash_lock.py reads them right."""

import importlib.util

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
    assert entries == ["# a comment", "-r requirements.txt", ("zc.lockfile", "4.0")]
    out = hash_lock.render(entries, {("zc.lockfile", "4.0"): hash_lock.version_files("zc.lockfile", "4.0", PAGE)})
    assert out == ("# a comment\n-r requirements.txt\nzc.lockfile==4.0 \\\n"
                   f"    --hash=sha256:{'a' * 64} \\\n    --hash=sha256:{'b' * 64}\n")
    assert hash_lock.unhashed(out) == [] and hash_lock.unhashed(text.split(" \\")[0] + "\n") == ["zc.lockfile==4.0"]
