"""Bench tools: the bundled operator SMSC simulator, the load generator, micro-benchmarks."""
