"""Planted-fault self-tests: a catalogue of small deviations of the reference server (each tagged with
the requirement IDs it breaks), a server that serves one of them, manifest tests proving each fault
shows, and ``prove.py``, which measures how many of them the conformance suite catches."""
