#!/usr/bin/env bash
# Generates the Python stubs (messages, gRPC services and their .pyi type stubs) from protos/
# into the directory given as $1 (default: the client package's source tree).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/clients/python/src}
py=${PYTHON:-$root/.venv/bin/python}
bin=$(dirname "$py")
mkdir -p "$out/modelruntime/v1"
cd "$root/protos"
protos=(modelruntime/v1/*.proto)
"$py" -m grpc_tools.protoc -I. \
  --python_out="$out" \
  --plugin=protoc-gen-mypy="$bin/protoc-gen-mypy" --mypy_out="$out" \
  "${protos[@]}" 2> >(grep -v "^Writing mypy" >&2)
# Only the service file has RPCs, so only it gets gRPC stubs.
"$py" -m grpc_tools.protoc -I. \
  --grpc_python_out="$out" \
  --plugin=protoc-gen-mypy_grpc="$bin/protoc-gen-mypy_grpc" --mypy_grpc_out="$out" \
  modelruntime/v1/model_runtime_service.proto 2> >(grep -v "^Writing mypy" >&2)
