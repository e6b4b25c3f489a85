"""examples/game_server.py runs, on the fake and (under run.sh) on slotgate."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
from typing import Dict

import pytest

EXAMPLE = pathlib.Path(__file__).resolve().parent.parent / "examples" / "game_server.py"


def run_example(env: Dict[str, str]) -> str:
    proc = subprocess.run([sys.executable, str(EXAMPLE)], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_example_on_the_fake() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLOTGATE_")}
    out = run_example(env)
    assert "room: {'players': ['ada', 'bob'], 'turn': 2}" in out
    assert "removed: 1" in out


@pytest.mark.skipif(not os.environ.get("SG_CONF_HOST"), reason="needs tests/conformance/run.sh (SG_CONF_HOST)")
def test_example_on_slotgate() -> None:
    e = os.environ
    env = dict(
        e,
        SLOTGATE_HOST=e["SG_CONF_HOST"],
        SLOTGATE_PORT=e["SG_CONF_PORT"],
        SLOTGATE_CA=e["SG_CONF_CA"],
        SLOTGATE_SERVER_NAME=e["SG_CONF_SERVER_NAME"],
        SLOTGATE_TOKEN=e["SG_CONF_TOKEN"],
    )
    # The room may hold keys from an earlier run of this test in the same
    # cluster; the example removes them, so at least its own state is counted.
    out = run_example(env)
    assert "room: {'players': ['ada', 'bob'], 'turn': 2}" in out
    assert "health: HealthStatus(status='healthy'" in out
