"""Generate src/slotgate/_proto/slotgate_pb2.py(i) from proto/slotgate.proto.

    python scripts/gen_proto.py          write the generated files
    python scripts/gen_proto.py --check  exit 1 if they differ from a fresh run

Uses protoc from grpcio-tools (pinned in requirements-dev.txt), so the output
does not depend on whatever protoc the machine has.
"""

from __future__ import annotations

import pathlib
import sys
import tempfile

from grpc_tools import protoc  # type: ignore[import-untyped]

HERE = pathlib.Path(__file__).resolve().parent.parent
PROTO_DIR = HERE.parent.parent / "proto"
OUT_DIR = HERE / "src" / "slotgate" / "_proto"
FILES = ("slotgate_pb2.py", "slotgate_pb2.pyi")


def generate(out: pathlib.Path) -> None:
    rc = protoc.main(
        [
            "protoc",
            f"-I{PROTO_DIR}",
            f"--python_out={out}",
            f"--pyi_out={out}",
            str(PROTO_DIR / "slotgate.proto"),
        ]
    )
    if rc != 0:
        raise SystemExit(f"gen_proto: protoc failed with status {rc}")


def main(argv: list[str]) -> int:
    check = "--check" in argv
    if not check:
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        generate(OUT_DIR)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        generate(pathlib.Path(tmp))
        stale = [
            name
            for name in FILES
            if not (OUT_DIR / name).exists()
            or (OUT_DIR / name).read_bytes() != (pathlib.Path(tmp) / name).read_bytes()
        ]
    if stale:
        print(
            "gen_proto: generated code is stale: "
            + ", ".join(stale)
            + " (run: python scripts/gen_proto.py)",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
