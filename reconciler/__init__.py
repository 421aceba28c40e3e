"""reconciler: a declarative reconciler for the Stellantis Fleet Owner API."""
