"""Tests that run a real NATS JetStream cluster on loopback (harness: ``natsd.py``)."""
