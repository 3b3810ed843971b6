"""A virtual ESC/POS printer on TCP (127.0.0.1), reached through the real network connector.

It keeps every byte it is sent (``received``; ``jobs`` per connection, real-time status
queries taken out; ``printed``: the jobs joined, to read back with
:func:`print_templates.escpos_decode.decode`), and answers DLE EOT
status queries from a state a test or the demo sets: paper ok / near end / out, cover open,
an error, or offline (it stops answering). ``after_bytes(n, ...)`` changes the state once
``n`` bytes of print data have arrived, which is how a job meets paper out, an opened cover
or a printer going offline half way. Offline also stops storing what arrives, as a printer
whose buffer is full stops taking data. ``flood`` makes it talk without pause (a babbling
firmware or a wrong baud rate), for the driver's bounded reads. ``attach_pty()`` serves the same printer on a
pseudo-terminal too, for the serial connector.

Run alone: ``python -m kiosk.hardware.simulators.escpos_network --port 9100 [--save DIR]``; read the
saved jobs with ``python -m print_templates.escpos_decode DIR/*.bin``.
"""
from __future__ import annotations

import argparse
import os
import select
import socket
import threading
import time
import tty
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from kiosk.hardware.escpos_stream import tokenize

PAPER_STATES = ("ok", "near_end", "out")
FLOOD_CHUNK = b"\x12" * 4096  # valid-looking status bytes, so only the amount gives the flood away


@dataclass(frozen=True)
class PrinterState:
    """What the virtual printer reports: online, paper, cover_open, error; flood: it never stops talking."""

    online: bool = True
    paper: str = "ok"
    cover_open: bool = False
    error: bool = False
    flood: bool = False

    def answer(self, n: int) -> bytes:
        """The one-byte answer to DLE EOT ``n`` (empty when offline: a dead printer is silent)."""
        if not self.online:
            return b""
        base = 0x12  # bits 1 and 4 are always set, bits 0 and 7 always clear
        stopped = self.cover_open or self.paper == "out" or self.error
        if n == 1:
            return bytes((base | (0x08 if stopped else 0),))
        if n == 2:
            return bytes((base | (0x04 if self.cover_open else 0) | (0x20 if self.paper == "out" else 0)
                          | (0x40 if self.error else 0),))
        if n == 3:
            return bytes((base | (0x20 if self.error else 0),))
        if n == 4:
            return bytes((base | (0x0C if self.paper in ("near_end", "out") else 0)
                          | (0x60 if self.paper == "out" else 0),))
        return b""


class VirtualEscposPrinter:
    """The TCP printer: ``start()`` binds 127.0.0.1 on ``port`` (0 = a free one); ``stop()`` ends it."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **state: Any) -> None:
        self._host, self._port = host, port
        self._lock = threading.Lock()
        self._state = PrinterState(**state)
        self._triggers: list[tuple[int, dict[str, Any]]] = []
        self._data_bytes = 0
        self._received = bytearray()
        self.jobs: list[bytes] = []
        self.status_queries: list[int] = []
        self.connections = 0
        self._server: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._clients: list[socket.socket] = []
        self._stopping = threading.Event()
        self._ptys: list[tuple[int, int]] = []

    # --- life cycle -------------------------------------------------------------------
    def start(self) -> "VirtualEscposPrinter":
        """Listen and serve in background threads; returns self."""
        srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind((self._host, self._port))
        srv.listen(8)
        srv.settimeout(0.2)
        self._server = srv
        t = threading.Thread(target=self._accept_loop, name="virtual-escpos", daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def stop(self) -> None:
        """Close the listening socket and every connection; safe to call twice."""
        self._stopping.set()
        # shutdown() wakes threads blocked in accept()/recv() at once; close() alone does not
        for sock in ([self._server] if self._server is not None else []) + list(self._clients):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            _close(sock)
        for t in self._threads:
            t.join(timeout=2)
        for master, slave in self._ptys:
            for fd in (master, slave):
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._ptys = []

    def __enter__(self) -> "VirtualEscposPrinter":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound TCP port."""
        assert self._server is not None, "start() first"
        return self._server.getsockname()[1]

    @property
    def spec(self) -> str:
        """The ``--printer`` spec that reaches it: network:127.0.0.1:PORT."""
        return f"network:{self._host}:{self.port}"

    # --- state --------------------------------------------------------------------------
    @property
    def state(self) -> PrinterState:
        """The state status queries are answered from."""
        with self._lock:
            return self._state

    def set_state(self, **changes: Any) -> None:
        """Change online, paper (ok|near_end|out), cover_open, error, flood now."""
        if "paper" in changes and changes["paper"] not in PAPER_STATES:
            raise ValueError(f"paper must be one of {PAPER_STATES}")
        with self._lock:
            self._state = replace(self._state, **changes)

    def after_bytes(self, n: int, **changes: Any) -> None:
        """Apply ``changes`` once ``n`` more bytes of print data have arrived (a mid-job event)."""
        with self._lock:
            self._triggers.append((self._data_bytes + n, changes))

    @property
    def printed(self) -> bytes:
        """What reached the paper: every finished job in order (what arrived so far while none has ended)."""
        with self._lock:
            jobs = list(self.jobs)
        return b"".join(jobs) if jobs else self.received

    @property
    def received(self) -> bytes:
        """Every byte stored, in order, status queries included."""
        with self._lock:
            return bytes(self._received)

    # --- serving ------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        assert self._server is not None
        while not self._stopping.is_set():
            try:
                conn, _ = self._server.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
            self._clients.append(conn)
            t = threading.Thread(target=self._serve, args=(conn,), name="virtual-escpos-conn", daemon=True)
            t.start()
            self._threads.append(t)

    def _flood(self, send: Any, gone: threading.Event) -> None:
        """While the state says flood, send status bytes as fast as the peer takes them."""
        while not (self._stopping.is_set() or gone.is_set()):
            if not self.state.flood:
                time.sleep(0.02)
                continue
            try:
                send(FLOOD_CHUNK)
            except (BlockingIOError, socket.timeout):
                time.sleep(0.005)  # the peer is not reading: its buffer is full
            except OSError:
                return

    def _start_flooder(self, send: Any) -> threading.Event:
        gone = threading.Event()
        t = threading.Thread(target=self._flood, args=(send, gone), name="virtual-escpos-flood", daemon=True)
        t.start()
        self._threads.append(t)
        return gone

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(0.2)
        gone = self._start_flooder(conn.send)
        pending = b""
        job = bytearray()
        try:
            while not self._stopping.is_set():
                try:
                    chunk = conn.recv(65536)
                except socket.timeout:
                    continue
                except OSError:
                    break
                if not chunk:
                    break
                pending += chunk
                pending = self._consume(lambda reply: conn.sendall(reply), pending, job)
        finally:
            gone.set()
            if job:
                with self._lock:
                    self.jobs.append(bytes(job))
            _close(conn)

    # --- the same printer on a serial line (a pseudo-terminal) ---------------------------------
    def attach_pty(self) -> str:
        """Also serve on a new pseudo-terminal; returns its device path for the serial connector."""
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)  # a flood must not block on a peer that stopped reading
        path = os.ttyname(slave)
        self._ptys.append((master, slave))
        t = threading.Thread(target=self._serve_pty, args=(master,), name="virtual-escpos-pty", daemon=True)
        t.start()
        self._threads.append(t)
        return path

    def _serve_pty(self, master: int) -> None:
        gone = self._start_flooder(lambda chunk: os.write(master, chunk))
        pending = b""
        job = bytearray()
        while not self._stopping.is_set():
            ready, _, _ = select.select([master], [], [], 0.2)
            if not ready:
                if job and not pending:  # a serial line has no end of job: a pause ends it
                    with self._lock:
                        self.jobs.append(bytes(job))
                    job.clear()
                continue
            try:
                chunk = os.read(master, 65536)
            except BlockingIOError:
                continue
            except OSError:
                break
            if not chunk:
                break
            pending = self._consume(lambda reply: os.write(master, reply), pending + chunk, job)
        gone.set()
        if job:
            with self._lock:
                self.jobs.append(bytes(job))

    def _consume(self, send: Any, pending: bytes, job: bytearray) -> bytes:
        """Handle every complete command in ``pending``; returns the incomplete tail."""
        end = 0
        for tok in tokenize(pending, final=False):
            end = tok.end
            raw = pending[tok.start:tok.end]
            if tok.name == "DLE EOT":
                with self._lock:
                    self.status_queries.append(tok.args[0])
                    self._received += raw
                    reply = FLOOD_CHUNK if self._state.flood else self._state.answer(tok.args[0])
                if reply:
                    try:
                        send(reply)
                    except OSError:
                        pass
                continue
            with self._lock:
                if not self._state.online:
                    continue  # an offline printer takes nothing in
                self._received += raw
                job += raw
                self._data_bytes += len(raw)
                fired = [t for t in self._triggers if self._data_bytes >= t[0]]
                for at, changes in fired:
                    self._triggers.remove((at, changes))
                    self._state = replace(self._state, **changes)
        return pending[end:]


def _close(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass


def main(argv: list[str] | None = None) -> int:
    """Serve a virtual printer until interrupted, saying what each job was (and saving it with --save)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9100)
    p.add_argument("--paper", choices=PAPER_STATES, default="ok")
    p.add_argument("--cover-open", action="store_true")
    p.add_argument("--offline", action="store_true")
    p.add_argument("--save", metavar="DIR",
                   help="write each job's bytes here (read them with python -m print_templates.escpos_decode)")
    args = p.parse_args(argv)
    printer = VirtualEscposPrinter(args.host, args.port, paper=args.paper, cover_open=args.cover_open,
                                   online=not args.offline).start()
    print(f"virtual ESC/POS printer on {printer.spec}", flush=True)
    seen = 0
    try:
        while True:
            time.sleep(0.5)
            while seen < len(printer.jobs):
                job = printer.jobs[seen]
                cuts = sum(1 for tok in tokenize(job) if tok.name == "GS V")
                print(f"job {seen + 1}: {len(job)} bytes, {cuts} cut(s)", flush=True)
                if args.save:
                    out = Path(args.save) / f"receipt-{seen + 1:04d}.bin"
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_bytes(job)
                    print(f"(saved: {out})", flush=True)
                seen += 1
    except KeyboardInterrupt:
        pass
    finally:
        printer.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
