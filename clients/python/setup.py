"""Adds the gRPC stubs to the package at build time: protoc and Debian's grpc_python_plugin
(packages protobuf-compiler, protobuf-compiler-grpc) generate grinqh/v1/inference_pb2*.py from
the repository's proto/ into the build, so they always match the checkout. Debian's
python3-grpc-tools is too old to generate them, hence the plugin."""
import pathlib
import shutil
import subprocess

from setuptools import setup
from setuptools.command.build_py import build_py

PROTO_ROOT = pathlib.Path(__file__).resolve().parent.parent.parent / "proto"
PROTO = PROTO_ROOT / "grinqh" / "v1" / "inference.proto"


class BuildPyWithStubs(build_py):
    def run(self):
        super().run()
        protoc, plugin = shutil.which("protoc"), shutil.which("grpc_python_plugin")
        if not (protoc and plugin and PROTO.exists()):
            raise SystemExit("grinqh-client: generating its stubs needs protoc, grpc_python_plugin "
                             f"(apt install protobuf-compiler protobuf-compiler-grpc) and {PROTO}")
        out = pathlib.Path(self.build_lib)
        subprocess.run([protoc, f"-I{PROTO_ROOT}", f"--python_out={out}", f"--grpc_python_out={out}",
                        f"--plugin=protoc-gen-grpc_python={plugin}", str(PROTO)], check=True)
        for package in (out / "grinqh", out / "grinqh" / "v1"):
            (package / "__init__.py").touch()


setup(cmdclass={"build_py": BuildPyWithStubs})
