"""``reconcile`` for the shell scripts tests run (the GitHub action's steps, the README's tour): the
run is forked from the test process's fork server (tests/forkserver.py), as ``run_cli`` does.

``python -IS forkclient.py SOCKET ARGS...`` hands the server this process's stdin, stdout and
stderr, environment, working directory and ARGS, then ends as the command did: its exit code, or
killed by the same signal. SIGINT and SIGTERM sent to it are passed on to the command. Only the
standard library: the point is to start in milliseconds instead of importing the CLI.
"""
import json
import os
import signal
import socket
import sys


def main(path: str, args: list[str]) -> None:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    conn.connect(path)
    socket.send_fds(conn, [json.dumps({"args": args, "env": dict(os.environ), "cwd": os.getcwd()}).encode()],
                    [0, 1, 2])
    pid = json.loads(conn.recv(4096))["pid"]
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: os.kill(pid, signum))
    code = json.loads(conn.recv(4096))["exit"]
    if code < 0:  # killed by a signal: so is this process, as the shell would have seen it
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    sys.exit(code)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
