"""Shared start-up for the interop scripts (standard library only): the airlock binary
from the command line, the counted `check`, the watchdog, running airlock against a
home, starting `airlock serve --gateway`, and a JSON answer from a test server.

The scripts import it as `import common` (their own folder is on sys.path when run as
`python tests/interop/NAME.py PATH/TO/airlock`); the browser suite (tests/ui/browser.py)
puts this folder on sys.path to use it too.
"""

import json
import os
import re
import signal
import subprocess
import sys
import threading

AIRLOCK = os.path.abspath(sys.argv[1])
_passed = 0


def check(cond, what):
    """Exits non-zero on the first failed check; counts and prints the passed ones."""
    global _passed
    if not cond:
        print(f"FAIL: {what}", file=sys.stderr)
        sys.exit(1)
    _passed += 1
    print(f"ok - {what}")


def summary():
    print(f"{_passed} passed, 0 failed")


def arm_watchdog(what, seconds=180, on_timeout=None):
    """Fails the run (exit 1, even from a hung call) after `seconds`; `on_timeout`
    (say, stopping the children) runs first."""

    def fire(*_):
        print(f"FAIL: timed out ({what} hung)", file=sys.stderr)
        if on_timeout:
            on_timeout()
        os._exit(1)

    signal.signal(signal.SIGALRM, fire)
    signal.alarm(seconds)


def airlock(home, *args, env=None):
    e = dict(os.environ, AIRLOCK_HOME=home, **(env or {}))
    return subprocess.run([AIRLOCK, *args], env=e, capture_output=True, text=True, check=True)


def start_gateway(home):
    """`airlock serve --gateway 127.0.0.1:0`: the process and the address it printed."""
    proc = subprocess.Popen([AIRLOCK, "serve", "--gateway", "127.0.0.1:0"], env=dict(os.environ, AIRLOCK_HOME=home), stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    addr = None
    for _ in range(10):
        line = proc.stderr.readline()
        m = re.search(r"http://([0-9.]+:\d+)", line)
        if m:
            addr = m.group(1)
            break
    # keep reading stderr so the server never blocks on a full pipe
    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
    return proc, addr


def send_json(handler, status, obj):
    """Answers the request of `handler` (an http.server handler) with `obj` as JSON."""
    data = json.dumps(obj).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)
