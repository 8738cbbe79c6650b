"""Regenerate the checked-in Python code of ``protos/*.proto``: ``python protos/generate.py``.

Needs ``grpcio-tools`` (the ``test`` extra pins the version the checked-in code came from, so
regenerating with it reproduces the files byte for byte; ``tests/query/test_grpc_api.py`` checks
that). The ``.proto`` files are compiled under the virtual path ``spanlake/protos/``, so the
generated modules import each other as ``spanlake.protos.*`` and register under a name no other
package uses. OpenTelemetry's ``.proto`` files are not vendored: their descriptors are taken from
the installed ``opentelemetry-proto`` package and handed to protoc as a descriptor set, so the
generated code imports ``opentelemetry.proto.trace.v1.trace_pb2`` instead of a copy of it.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import FileDescriptor

PROTOS_DIR = Path(__file__).resolve().parent
VIRTUAL_DIR = "spanlake/protos"
SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def _installed_descriptor_set() -> descriptor_pb2.FileDescriptorSet:
    """OpenTelemetry's trace.proto and what it imports, dependencies first."""
    from opentelemetry.proto.trace.v1 import trace_pb2

    out = descriptor_pb2.FileDescriptorSet()
    seen: set[str] = set()

    def add(fd: FileDescriptor) -> None:
        if fd.name in seen:
            return
        seen.add(fd.name)
        for dep in fd.dependencies:
            add(dep)
        fd.CopyToProto(out.file.add())

    add(trace_pb2.DESCRIPTOR)
    return out


def proto_files() -> list[Path]:
    return sorted(PROTOS_DIR.glob("*.proto"))


def generated_names() -> list[str]:
    """File names (in ``protos/``) that :func:`generate` writes."""
    return sorted(p.stem + s for p in proto_files() for s in SUFFIXES)


def generate(out_dir: Path) -> list[Path]:
    """Compile every ``protos/*.proto`` into ``out_dir``; returns the files written."""
    import grpc_tools
    from grpc_tools import protoc

    well_known = Path(grpc_tools.__file__).parent / "_proto"
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        deps = tmp_path / "deps.binpb"
        deps.write_bytes(_installed_descriptor_set().SerializeToString())
        build = tmp_path / "build"
        build.mkdir()
        args = [
            "grpc_tools.protoc",
            f"--proto_path={well_known}",
            f"--proto_path={VIRTUAL_DIR}={PROTOS_DIR}",
            f"--descriptor_set_in={deps}",
            f"--python_out={build}",
            f"--pyi_out={build}",
            f"--grpc_python_out={build}",
            *(f"{VIRTUAL_DIR}/{p.name}" for p in proto_files()),
        ]
        if protoc.main(args) != 0:
            raise RuntimeError(f"protoc failed: {' '.join(args)}")
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for name in generated_names():
            target = out_dir / name
            shutil.copyfile(build / VIRTUAL_DIR / name, target)
            written.append(target)
        return written


def main() -> int:
    for path in generate(PROTOS_DIR):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
