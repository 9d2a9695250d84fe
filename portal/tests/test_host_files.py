"""FileStore: paths stay under the root, writes are atomic, even under SIGKILL."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from portal.host.errors import InvalidValue
from portal.host.files import TEMP_PREFIX, FileStore, SimulatedCrash

REPO = Path(__file__).resolve().parents[2]


def _temporaries(folder: Path) -> list[Path]:
    return sorted(folder.glob(f"{TEMP_PREFIX}*"))


def test_write_lands_under_root_and_reads_back(tmp_path):
    files = FileStore(tmp_path)
    assert files.write("/etc/babeld.conf", "interface mesh0\n") is True
    assert (tmp_path / "etc" / "babeld.conf").read_text() == "interface mesh0\n"
    assert files.read_text("/etc/babeld.conf") == "interface mesh0\n"
    assert files.read_text("/etc/missing") is None


def test_same_content_is_not_rewritten(tmp_path):
    files = FileStore(tmp_path)
    files.write("/etc/x.conf", "a")
    inode = (tmp_path / "etc" / "x.conf").stat().st_ino
    assert files.write("/etc/x.conf", "a") is False
    assert (tmp_path / "etc" / "x.conf").stat().st_ino == inode
    assert files.write("/etc/x.conf", "a", mode=0o600) is True


def test_mode_is_applied_and_secret_never_world_readable(tmp_path):
    files = FileStore(tmp_path)
    files.write("/etc/secret", "s3cret", mode=0o600)
    assert (tmp_path / "etc" / "secret").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    "path", ["etc/x", "/etc/../../x", "/etc/./x/..", "/etc/x\x00", "", "../x"]
)
def test_paths_outside_root_are_refused(tmp_path, path):
    with pytest.raises(InvalidValue):
        FileStore(tmp_path).write(path, "x")


def test_simulated_crash_between_write_and_rename_keeps_old_content(tmp_path):
    files = FileStore(tmp_path)
    files.write("/etc/dnsmasq.conf", "old\n")
    with pytest.raises(SimulatedCrash):
        files.write("/etc/dnsmasq.conf", "new\n", crash_before_rename=True)
    assert files.read_text("/etc/dnsmasq.conf") == "old\n"
    assert len(_temporaries(tmp_path / "etc")) == 1  # the crash left its temp file
    files.write("/etc/dnsmasq.conf", "newer\n")
    assert files.read_text("/etc/dnsmasq.conf") == "newer\n"
    assert _temporaries(tmp_path / "etc") == []  # swept by the next write


def test_failed_write_removes_its_temporary(tmp_path, monkeypatch):
    files = FileStore(tmp_path)
    files.write("/etc/a", "old")

    def broken_replace(*args, **kwargs):
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        files.write("/etc/a", "new")
    assert _temporaries(tmp_path / "etc") == []
    assert files.read_text("/etc/a") == "old"


_CHILD = """
import sys
from pathlib import Path
from portal.host.files import FileStore

files = FileStore(Path(sys.argv[1]))
data = Path(sys.argv[2]).read_bytes()
sys.stdout.write("ready\\n")
sys.stdout.flush()
files.write("/etc/big.conf", data)
sys.stdout.write("done\\n")
sys.stdout.flush()
"""


def test_sigkill_at_random_moments_leaves_old_or_new_content(tmp_path):
    """A real writer process is killed mid-write many times."""
    root = tmp_path / "root"
    files = FileStore(root)
    size = 8 * 1024 * 1024
    old = (b"old-" * (size // 4))[:size]
    new = (b"NEW!" * (size // 4))[:size] + b"tail"
    new_file = tmp_path / "new.bin"
    new_file.write_bytes(new)
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def run_child() -> subprocess.Popen[str]:
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(root), str(new_file)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n"
        return child

    # How long one full write takes on this machine, from "ready" to exit.
    files.write("/etc/big.conf", old)
    child = run_child()
    started = time.monotonic()
    child.wait()
    full = max(time.monotonic() - started, 0.02)
    assert files.read_bytes("/etc/big.conf") == new

    rng = random.Random(20240601)
    outcomes = {"old": 0, "new": 0}
    for _ in range(30):
        files.write("/etc/big.conf", old)
        child = run_child()
        time.sleep(rng.uniform(0, full * 1.2))
        child.send_signal(signal.SIGKILL)
        child.wait()
        content = files.read_bytes("/etc/big.conf")
        assert content in (old, new), "target holds a mix of old and new"
        outcomes["old" if content == old else "new"] += 1
    # The next write sweeps whatever a killed writer left behind.
    files.write("/etc/big.conf", b"final")
    assert _temporaries(root / "etc") == []
    assert files.read_bytes("/etc/big.conf") == b"final"
    # The kills really landed before and after the rename.
    assert outcomes["old"] > 0 and outcomes["new"] > 0
