#!/bin/sh
# Debian's nvidia-cuda-toolkit installs nvcc as /usr/bin/nvcc with headers and libraries in
# the multiarch dirs; give it the /usr/local/cuda-X.Y layout every other CUDA source has, so
# the resolver finds and verifies it the same way. $1 = X.Y
set -eu
home=/usr/local/cuda-$1
mkdir -p "$home/bin"
for tool in /usr/lib/nvidia-cuda-toolkit/bin/* /usr/bin/nvcc /usr/bin/cuobjdump /usr/bin/nvdisasm /usr/bin/ptxas; do
  [ -e "$tool" ] && ln -sf "$tool" "$home/bin/$(basename "$tool")"
done
ln -sfn /usr/include "$home/include"
ln -sfn /usr/lib/x86_64-linux-gnu "$home/lib64"
ln -sfn "$home" /usr/local/cuda
