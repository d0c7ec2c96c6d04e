"""torch.version-style view of the build (``minitorch.version.cuda`` etc.)."""

from ._build_info import cuda_version as cuda
from ._build_info import git_version
from ._build_info import rocm_version as hip
from ._build_info import version as __version__

__all__ = ["__version__", "cuda", "git_version", "hip"]
