"""The behaviour and property tests of the conformance suite (collected by ``conform42 run``).

Run them with ``conform42 run`` or ``pytest --pyargs suite.conformance --target URL ...``; the
fixtures come from the ``suite.plugin`` pytest plugin.
"""
