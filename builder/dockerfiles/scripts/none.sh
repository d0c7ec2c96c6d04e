#!/bin/sh
# cpu images have no accelerator toolchain.
true
