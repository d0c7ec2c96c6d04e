"""builder: build, repair, check and smoke-test native binaries with accelerator variants."""

__version__ = "0.1.0"
