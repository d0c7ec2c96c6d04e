"""Binary tooling: ELF reading, batched patchelf edits, fast reproducible wheel rewrites."""
