# Resolves minitorch's version with the same rules as tools/minitorch_version.py:
#   $BUILD_VERSION, then $PYTORCH_BUILD_VERSION, then version.txt.
# Under scikit-build-core the already-normalised SKBUILD_PROJECT_VERSION_FULL wins, so
# the wheel's METADATA and minitorch.__version__ can never disagree.
#
# Sets MINITORCH_VERSION_FULL (e.g. 0.3.0.dev20261122+cpu) and MINITORCH_VERSION_BASE
# (0.3.0, numeric, usable in project(VERSION)).

if(DEFINED SKBUILD_PROJECT_VERSION_FULL)
  set(MINITORCH_VERSION_FULL "${SKBUILD_PROJECT_VERSION_FULL}")
elseif(NOT "$ENV{BUILD_VERSION}" STREQUAL "")
  set(MINITORCH_VERSION_FULL "$ENV{BUILD_VERSION}")
elseif(NOT "$ENV{PYTORCH_BUILD_VERSION}" STREQUAL "")
  set(MINITORCH_VERSION_FULL "$ENV{PYTORCH_BUILD_VERSION}")
else()
  file(STRINGS "${CMAKE_CURRENT_LIST_DIR}/../version.txt" MINITORCH_VERSION_FULL LIMIT_COUNT 1)
endif()
string(STRIP "${MINITORCH_VERSION_FULL}" MINITORCH_VERSION_FULL)

if(NOT MINITORCH_VERSION_FULL MATCHES "^v?([0-9]+(\\.[0-9]+)?(\\.[0-9]+)?(\\.[0-9]+)?)")
  message(FATAL_ERROR "minitorch: version '${MINITORCH_VERSION_FULL}' does not start with a "
                      "release number such as 0.3.0 (set BUILD_VERSION or fix version.txt)")
endif()
set(MINITORCH_VERSION_BASE "${CMAKE_MATCH_1}")
