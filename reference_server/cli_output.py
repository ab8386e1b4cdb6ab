"""What ``python -m reference_server`` tells whoever started it: exit codes, progress lines, fatal errors.

Exit codes: 0 after SIGINT/SIGTERM (a requested stop), 1 when an engine fails to start or dies while
serving (or the port cannot be bound), 2 for a setup problem the message explains (vLLM or the model
wheels missing, a bad option).
"""

from __future__ import annotations

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_SETUP", "Fatal", "say"]

EXIT_OK, EXIT_FAILED, EXIT_SETUP = 0, 1, 2


class Fatal(Exception):
    """Stop with this exit code and message (printed to stderr, no traceback)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def say(message: str) -> None:
    """A progress line for the person who started the server (stdout, unbuffered)."""
    print(f"conform42: {message}", flush=True)
