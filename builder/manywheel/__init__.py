"""manywheel: Linux wheels built through PEP 517, repaired and retagged manylinux."""
