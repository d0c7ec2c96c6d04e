"""Executors run a builder's commands: on the host, or (with --docker) in a container."""
