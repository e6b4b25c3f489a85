"""The committed protobuf code is what protoc (pinned in requirements-dev.txt)
generates from proto/slotgate.proto today."""

from __future__ import annotations

import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent.parent


def test_regenerating_gives_no_diff() -> None:
    proc = subprocess.run(
        [sys.executable, str(HERE / "scripts" / "gen_proto.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr

