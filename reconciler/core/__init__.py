"""The pure core: the fleet model, the planner and its policies. Values in, values out; no I/O."""
