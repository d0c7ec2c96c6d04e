"""Discover and verify interpreters and compilers; a toolchain is trusted only after it ran."""
