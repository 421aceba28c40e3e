"""What the unit and end-to-end tests share: fleets, builders, a loopback receiver, the spec checker."""
