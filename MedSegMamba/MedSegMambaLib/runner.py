"""Run the segmenter in a child process and turn its JSON lines into events.

Pure Python (no slicer, qt or vtk): the child is started in its own session (POSIX) or process
group (Windows) so that Cancel can end the whole tree, and its output is read on a thread so that
the caller - a QTimer in the GUI, a wait loop headless - only ever polls a queue.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Event:
    """One line from the child: kind is "progress", "done", "error", "log" or "exit"."""

    kind: str
    stage: str = ""
    fraction: float = 0.0
    outputs: dict = field(default_factory=dict)
    message: str = ""
    returncode: int | None = None


def parseLine(line: str) -> Event:
    """A JSON progress line becomes its event; anything else is kept as log text."""
    text = line.rstrip("\r\n")
    try:
        data = json.loads(text)
    except ValueError:
        return Event("log", message=text)
    if not isinstance(data, dict) or data.get("event") not in ("progress", "done", "error"):
        return Event("log", message=text)
    kind = data["event"]
    if kind == "progress":
        return Event(kind, stage=str(data.get("stage", "")), fraction=float(data.get("fraction", 0.0)))
    if kind == "done":
        return Event(kind, outputs=dict(data.get("outputs") or {}))
    return Event(kind, message=str(data.get("message", "unknown error")))


class SegmenterProcess:
    """A started child process; `events()` drains what its reader thread has queued so far."""

    def __init__(self, command: list[str], env: dict | None = None, cwd: str | None = None):
        self.command = list(command)
        self.log: list[str] = []
        self._queue: queue.Queue[Event] = queue.Queue()
        kwargs = {}
        if sys.platform == "win32":
            kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP | getattr(subprocess, "CREATE_NO_WINDOW", 0)
        else:
            kwargs["start_new_session"] = True  # own process group: killpg reaches grandchildren too
        self.process = subprocess.Popen(
            self.command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
            env=env,
            cwd=cwd,
            **kwargs,
        )
        self._reader = threading.Thread(target=self._read, name="MedSegMamba-reader", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _read(self) -> None:
        for line in self.process.stdout:
            self._queue.put(parseLine(line))
        self.process.stdout.close()
        self._queue.put(Event("exit", returncode=self.process.wait()))

    def events(self) -> list[Event]:
        """Events received since the last call (never blocks); log lines are also kept in `log`."""
        out = []
        while True:
            try:
                event = self._queue.get_nowait()
            except queue.Empty:
                return out
            if event.kind == "log":
                self.log.append(event.message)
            elif event.kind == "error":
                self.log.append("ERROR: " + event.message)
            out.append(event)

    def kill(self, timeout: float = 5.0) -> None:
        """End the child and everything it started; returns once the child has exited."""
        if self.process.poll() is None:
            if sys.platform == "win32":
                subprocess.run(["taskkill", "/F", "/T", "/PID", str(self.pid)], capture_output=True)
            else:
                try:
                    os.killpg(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)
        self._reader.join(timeout)
