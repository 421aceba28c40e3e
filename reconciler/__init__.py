"""reconciler: a declarative reconciler for the Stellantis Fleet Owner API (distributed as fleet-reconciler)."""

from importlib.metadata import PackageNotFoundError, version

DISTRIBUTION = "fleet-reconciler"  # the name on the package index; the command and the package are `reconciler`

try:
    __version__ = version(DISTRIBUTION)
except PackageNotFoundError:  # run from a source tree that was not installed
    __version__ = "0+unknown"
