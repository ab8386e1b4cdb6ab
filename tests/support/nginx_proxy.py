"""A real nginx (the Debian package) as a reverse proxy in front of a server, for the planted liberties.

Its configuration is nginx's defaults plus only what running it here needs: in the foreground
(``daemon off``), one worker, listening on 127.0.0.1 on a free port, logs and temporary files in a
folder of its own. The one proxy directive is ``proxy_pass``: so HTTP/1.0 to the upstream, response
buffering on, 60 s read timeout, as anyone gets who installs nginx and points it at an LLM server.

    with NginxProxy("http://127.0.0.1:8042") as proxy:
        httpx.get(f"{proxy.base_url}/health")

nginx cannot report the port it bound, so a free one is picked first (bind to port 0, close) and the
start is retried on another when nginx finds it taken meanwhile. ``nginx_binary()`` is None when nginx is
not installed (tests then Skip; ``.ci/run`` installs it where it can).
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

from suite.process import ServerExited, ServerSupervisor

__all__ = ["NginxProxy", "config_text", "nginx_binary"]

#: Where Debian puts it; root's PATH has /usr/sbin, a user's often not.
CANDIDATES = ("/usr/sbin/nginx", "/usr/bin/nginx")


def nginx_binary() -> str | None:
    found = shutil.which("nginx")
    return found or next((c for c in CANDIDATES if os.access(c, os.X_OK)), None)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def config_text(upstream: str, port: int, folder: Path) -> str:
    """nginx.conf: defaults, one server, ``proxy_pass`` only."""
    temp = "\n".join(
        f"    {kind}_temp_path {folder / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    # A root master would hand the workers to "nobody", who cannot write the temp folders here.
    user = "user root;\n" if os.geteuid() == 0 else ""
    return f"""{user}daemon off;
worker_processes 1;
pid {folder / "nginx.pid"};
error_log {folder / "error.log"} warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
{temp}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass {upstream.rstrip("/")};
        }}
    }}
}}
"""


class NginxProxy(ServerSupervisor):
    """nginx in front of ``upstream`` for the length of a ``with`` (health polled through it)."""

    def __init__(self, upstream: str, startup_timeout: float = 20, attempts: int = 3) -> None:
        binary = nginx_binary()
        if binary is None:
            raise FileNotFoundError("nginx is not installed (apt-get install nginx)")
        self.binary = binary
        self.upstream = upstream
        self.attempts = attempts
        super().__init__(
            self._command,
            name="nginx",
            startup_timeout=startup_timeout,
            merge_output=True,
            workdir_prefix="conform42-nginx-",
        )

    def _command(self, port_file: Path) -> list[str]:
        port = free_port()
        port_file.write_text(str(port), encoding="utf-8")  # the supervisor polls /health on it
        conf = self.workdir / "nginx.conf"
        conf.write_text(config_text(self.upstream, port, self.workdir), encoding="utf-8")
        # -e: errors before the configuration is read go here too, not to /var/log/nginx.
        return [self.binary, "-p", str(self.workdir), "-c", str(conf), "-e", str(self.workdir / "error.log")]

    def __enter__(self) -> NginxProxy:
        for attempt in range(1, self.attempts + 1):
            try:
                self.port = None
                return super().__enter__()
            except ServerExited as exc:
                # Raced for the port: another one. Anything else nginx complains of ends here.
                if attempt == self.attempts or "Address already in use" not in self.error_log():
                    raise exc
                self.workdir.mkdir(parents=True, exist_ok=True)
        raise AssertionError("unreachable")

    def error_log(self) -> str:
        try:
            return (self.workdir / "error.log").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
