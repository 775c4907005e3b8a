"""Runs a command on a pseudo-terminal of a given size, as a user's terminal would: the command
leads a new session whose controlling terminal is the pty, so a Ctrl-C typed there (written to
the master) reaches its foreground process group. Everything the command writes goes to --out,
byte for byte. Exits with the command's status (128+N when a signal N ended it).

  pty_run.py --cols 60 [--rows 24] --out FILE [--ctrl-c-after REGEX]... [--timeout S] -- CMD...

Each --ctrl-c-after types one Ctrl-C once the output (after the previous one's match) matches
REGEX, in order."""
import argparse
import fcntl
import os
import pty
import re
import select
import signal
import struct
import sys
import termios
import time


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cols", type=int, required=True)
    parser.add_argument("--rows", type=int, default=24)
    parser.add_argument("--out", required=True)
    parser.add_argument("--ctrl-c-after", action="append", default=[])
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command")

    pid, master = pty.fork()
    if pid == 0:  # the child: stdin/stdout/stderr are the pty's slave
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", args.rows, args.cols, 0, 0))
        # As a terminal's shell would: a `pty_run.py &` of a script inherits SIGINT ignored.
        for sig in (signal.SIGINT, signal.SIGQUIT):
            signal.signal(sig, signal.SIG_DFL)
        os.execvp(command[0], command)

    patterns = [re.compile(p.encode()) for p in args.ctrl_c_after]
    output, searched_from = b"", 0
    deadline = time.monotonic() + args.timeout
    with open(args.out, "wb") as out:
        while True:
            if time.monotonic() > deadline:
                os.killpg(pid, signal.SIGKILL)
                print(f"pty_run.py: {command[0]} ran past {args.timeout} s", file=sys.stderr)
                deadline = float("inf")
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every holder of the slave has closed it
                break
            if not chunk:
                break
            out.write(chunk)
            out.flush()
            output += chunk
            if patterns:
                match = patterns[0].search(output, searched_from)
                if match:
                    os.write(master, b"\x03")
                    searched_from = match.end()
                    patterns.pop(0)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        sys.exit(128 + os.WTERMSIG(status))
    sys.exit(os.WEXITSTATUS(status))


if __name__ == "__main__":
    main()
