"""What the runner is doing now, on stderr, so that a long run never looks stuck.

Each step names its workload and library (``[1:05] rosenbrock n=10,000: autograd``); a step
expected to take a while says so before it starts (``about 8 s``). On a terminal the step is one
status line, rewritten in place and erased before the next result row is printed, so the tables
on stdout stay as they are; anywhere else (a CI log, a file) each step is a line of its own.
"""
import shutil
import sys
import time

LONG_S = 2.0  # a step expected to take longer than this gives its estimate


def fmt_duration(seconds):
    """'8 s', '1 min 05 s'."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    return f"{seconds // 60} min {seconds % 60:02d} s"


class Progress:
    """Writes steps to ``stream``; ``live`` (a terminal) rewrites one status line."""

    def __init__(self, stream=None, live=None, enabled=True):
        self.stream = sys.stderr if stream is None else stream
        if live is None:
            isatty = getattr(self.stream, "isatty", None)
            live = bool(isatty and isatty())
        self.live = live
        self.enabled = enabled
        self.start = time.perf_counter()
        self._shown = False  # a live status line is on the screen

    def elapsed(self):
        return time.perf_counter() - self.start

    def step(self, text, estimate=None):
        """Announce a step; ``estimate`` (seconds) is shown when the step is a long one."""
        if not self.enabled:
            return
        t = int(self.elapsed())
        msg = f"[{t // 60}:{t % 60:02d}] {text}"
        if estimate is not None and estimate >= LONG_S:
            msg += f" (about {fmt_duration(estimate)})"
        if self.live:
            # One screen line at most: a wrapped line could not be erased.
            width = shutil.get_terminal_size().columns - 5
            self.stream.write("\r\x1b[K" + msg[:width] + " ...")
            self._shown = True
        else:
            self.stream.write(msg + "\n")
        self.stream.flush()

    def clear(self):
        """Erase the live status line (before a result row is printed under it)."""
        if self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._shown = False


class ClearingStream:
    """Stands for stdout while a live status line is on the same terminal: every write first
    erases that line, so a result row never lands behind it."""

    def __init__(self, stream, progress):
        self._stream, self._progress = stream, progress

    def write(self, text):
        if text:
            self._progress.clear()
        return self._stream.write(text)

    def __getattr__(self, name):
        return getattr(self._stream, name)


# The runner's instance: quiet until main() enables it, so that the sections run from tests or
# other code print nothing to stderr.
current = Progress(enabled=False)


def step(text, estimate=None):
    current.step(text, estimate)
