# Starts ElectrumX for the devnet (written out and run by tests/devnet/src/electrumx.rs).
# - Binds any free port where SERVICES names port 1 or 2 (ElectrumX refuses port 0
#   there), and reports the ports its TCP and SSL services really bound to
#   $DEVNET_PORTS_FILE, so nobody has to guess a free port.
# - With DEVNET_FAST=1, stops PaddedRSTransport from holding small messages up to 1 s
#   (ElectrumX has no setting for WAIT_FOR_BUFFER_GROWTH_SECONDS).
# - With DEVNET_PARENT_PID, exits when that process dies, so a killed test run
#   leaves no ElectrumX behind.
import json
import os
import sys
import threading
import time

from electrumx.server import session, transport

if os.environ.get("DEVNET_FAST") == "1":
    transport.PaddedRSTransport.WAIT_FOR_BUFFER_GROWTH_SECONDS = 0.0

_ports_file = os.environ["DEVNET_PORTS_FILE"]
_ANY_PORT = (1, 2)
_original_serve_rs = session.serve_rs


async def _serve_rs_any_port(session_factory, host=None, port=None, **kwargs):
    return await _original_serve_rs(session_factory, host, 0 if port in _ANY_PORT else port, **kwargs)


session.serve_rs = _serve_rs_any_port
_original_start = session.SessionManager._start_external_servers


async def _start_and_report(self):
    await _original_start(self)
    ports = {}
    for service, server in self.servers.items():
        if service.protocol in ("tcp", "ssl"):
            ports[service.protocol] = server.sockets[0].getsockname()[1]
    tmp = _ports_file + ".tmp"
    with open(tmp, "w") as f:
        json.dump(ports, f)
    os.replace(tmp, _ports_file)


session.SessionManager._start_external_servers = _start_and_report

_parent = os.environ.get("DEVNET_PARENT_PID")
if _parent:
    def _watch_parent(pid=int(_parent)):
        while os.getppid() == pid:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=_watch_parent, daemon=True).start()

from electrumx.cli.electrumx_server import main  # noqa: E402

sys.exit(main())
