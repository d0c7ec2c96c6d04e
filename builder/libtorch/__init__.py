"""libtorch-style C++ archives: built from a project with CMake, or extracted from a wheel."""
