#!/bin/sh
# A relocatable CUDA 13.x toolkit from NVIDIA's PyPI wheels, exposed as /usr/local/cuda-X.Y.
# The wheels ship libcudart.so.13 but no unversioned libcudart.so, which `-cudart shared`
# and CMake's FindCUDAToolkit link against: add it. $1 = X.Y, the rest = wheel pins.
set -eu
version=$1; shift
if [ -s /opt/builder/ca.pem ]; then export PIP_CERT=/opt/builder/ca.pem; fi
/opt/builder/venv/bin/pip install -q --target /opt/cuda-pypi "$@"
root=$(dirname "$(dirname "$(ls /opt/cuda-pypi/nvidia/cu*/bin/nvcc)")")
for lib in "$root"/lib/libcudart.so.*; do ln -sf "$(basename "$lib")" "$root/lib/libcudart.so"; break; done
ln -sfn "$root" "/usr/local/cuda-$version"
ln -sfn "/usr/local/cuda-$version" /usr/local/cuda
