"""The version of vnarrate (one place: the package, the CLI and manifests read it)."""

__version__ = "0.1.0"
