"""Inference engines behind the gateway: real vLLM processes, or the sim test double."""
