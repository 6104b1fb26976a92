"""Process handling for the benchmark harness: every process it starts (LIVE, killed at exit),
spawn / reap / try_reap with each process's rusage and sampled peak RSS (PeakRss), the CPU used
meanwhile by processes not started here (Others), and small helpers: a free loopback port, polling
until a condition holds, whether a port accepts connections, a log file's tail, and logging.
"""

import atexit
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

LIVE = []  # every process started here, killed at exit if still running


def log(msg):
    print(f"bench: {msg}", flush=True)


def cleanup():
    for p in LIVE:
        if p.returncode is None:
            try:
                p.kill()
                os.waitpid(p.pid, 0)
            except OSError:
                pass
            p.returncode = -9


atexit.register(cleanup)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(what, cond, timeout, interval=0.05):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


class PeakRss(threading.Thread):
    """Samples a process's VmHWM every 20 ms. ru_maxrss from wait4 is not used for memory: Linux
    carries the forking parent's (this script's) peak RSS across exec into the child's."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.path, self.kib, self.done = f"/proc/{pid}/status", 0, threading.Event()
        self.start()

    def run(self):
        while not self.done.wait(0.02):
            try:
                with open(self.path) as f:
                    hwm = next((int(line.split()[1]) for line in f if line.startswith("VmHWM:")), 0)
                self.kib = max(self.kib, hwm)
            except (OSError, ValueError):
                pass

    def stop(self):
        self.done.set()
        self.join()
        return self.kib


def spawn(args, out, err=None, env=None):
    """Starts a process with stdout to `out` and stderr to `err` (default: the same file)."""
    with open(out, "wb") as o:
        e = open(err, "wb") if err else o
        with e:
            p = subprocess.Popen([str(a) for a in args], stdin=subprocess.DEVNULL, stdout=o,
                                 stderr=e if err else subprocess.STDOUT, env=env)
    LIVE.append(p)
    p.rss = PeakRss(p.pid)
    return p


def reap(p, timeout):
    """Waits for `p` (killed after `timeout` s); returns its rusage. Raises on timeout."""
    expired = threading.Event()

    def expire():
        expired.set()
        os.kill(p.pid, signal.SIGKILL)

    timer = threading.Timer(timeout, expire)
    timer.daemon = True
    timer.start()
    try:
        _, status, ru = os.wait4(p.pid, 0)
    finally:
        timer.cancel()
    p.returncode = os.waitstatus_to_exitcode(status)
    p.rss.stop()
    if expired.is_set():
        raise RuntimeError(f"{Path(p.args[0]).name} did not finish within {timeout}s (killed)")
    return ru


def try_reap(p):
    """The rusage of `p` if it has exited (reaping it), else None."""
    pid, status, ru = os.wait4(p.pid, os.WNOHANG)
    if pid == 0:
        return None
    p.returncode = os.waitstatus_to_exitcode(status)
    p.rss.stop()
    return ru


CLK = os.sysconf("SC_CLK_TCK")


class Others:
    """CPU used by processes not started here, between construction and check(): the whole
    machine's busy time (/proc/stat) minus this script's, its children's and its live processes'.
    Another build or test run on the machine skews every number; this says when it happened."""

    def __init__(self):
        self.busy, self.ours, self.t0 = self.machine(), self.mine(), time.monotonic()

    @staticmethod
    def machine():
        f = [int(x) for x in open("/proc/stat").readline().split()[1:9]]
        return (sum(f) - f[3] - f[4]) / CLK  # all but idle and iowait

    @staticmethod
    def mine():
        t = os.times()
        total = t.user + t.system + t.children_user + t.children_system
        for p in LIVE:
            if p.returncode is None:
                try:
                    f = Path(f"/proc/{p.pid}/stat").read_text().rsplit(")", 1)[1].split()
                    total += (int(f[11]) + int(f[12])) / CLK
                except (OSError, IndexError, ValueError):
                    pass
        return total

    def check(self, label, notes):
        other = (self.machine() - self.busy) - (self.mine() - self.ours)
        wall = time.monotonic() - self.t0
        if other > max(0.1 * wall, 0.25):
            share = 100 * other / wall
            notes.append(f"WARNING {label}: other processes used {other:.1f} CPU-s ({share:.0f}% "
                         "of a core) meanwhile; these numbers may be skewed")
            log(notes[-1])


def tail(path, lines=40):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError as e:
        return f"({e})"
