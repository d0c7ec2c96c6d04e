#!/bin/sh
# Debian's hipcc lives in /usr/bin, with clang's ROCm device libraries under llvm's resource
# dir and HIP in the multiarch dirs. Give it the /opt/rocm-X.Y layout ROCm's own packages
# have: the resolver finds it there like any ROCm install, and hipcc/clang accept the
# ROCM_PATH the resolver exports (with ROCM_PATH=/usr clang finds no device library).
# $1 = X.Y
set -eu
root=/opt/rocm-$1
llvm=$(dirname "$(dirname "$(readlink -f "$(command -v clang++-17 || ls /usr/lib/llvm-*/bin/clang++ | tail -n 1)")")")
mkdir -p "$root/bin" "$root/amdgcn"
for tool in /usr/bin/hip* /usr/bin/rocm_agent_enumerator /usr/bin/rocminfo; do
  [ -e "$tool" ] && ln -sf "$tool" "$root/bin/"
done
ln -sfn "$(ls -d "$llvm"/lib/clang/*/amdgcn/bitcode | tail -n 1)" "$root/amdgcn/bitcode"
ln -sfn /usr/include "$root/include"
ln -sfn /usr/lib/x86_64-linux-gnu "$root/lib"
ln -sfn "$llvm" "$root/llvm"
ln -sfn "$root" /opt/rocm
"$root/bin/hipcc" --version
