"""The CUPS A4 driver against a private cupsd: completion, reasons, cancel, retry, the CLI."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest

from kiosk.errors import ConfigError, CoverOpen, DeviceOffline, DeviceTimeout, NoDevice, PaperOut, PrintFailed
from kiosk.hardware.base import DeviceState, SupplyState
from kiosk.hardware.cups_printer import (JOB_CANCELED, CupsA4Printer, reason_keyword,
                                         status_from_attributes)

from cups_fixtures import CupsServer, cupsd  # noqa: F401  (fixture)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def make_pdf(tmp_path: Path) -> Callable[[], Path]:
    from reportlab.pdfgen import canvas

    def make() -> Path:
        path = tmp_path / "doc.pdf"
        c = canvas.Canvas(str(path))
        c.drawString(72, 720, "kiosk A4 test")
        c.save()
        return path

    return make


def _printer(server: CupsServer, queue: str, **options: object) -> CupsA4Printer:
    return CupsA4Printer("a4_printer", {"queue": queue, "server": server.server, "poll_s": 0.1, **options})


def _jobs(server: CupsServer, queue: str) -> list[int]:
    """The jobs cupsd still knows for ``queue``, ended ones included (the driver purges its own)."""
    import cups

    conn = cups.Connection(host=server.server)
    return sorted(j for j in conn.getJobs(which_jobs="all")
                  if conn.getJobAttributes(j).get("job-printer-uri", "").endswith("/" + queue))


def _forgotten(server: CupsServer, queue: str, printer: CupsA4Printer) -> bool:
    """True once cupsd holds no job for ``queue``; a job it was still stopping goes on a later status poll."""
    deadline = time.monotonic() + 15
    while _jobs(server, queue):
        if time.monotonic() > deadline:
            return False
        printer.status()  # what the health monitor does every few seconds
        time.sleep(0.2)
    return True


def _submitted(server: CupsServer, queue: str) -> int:
    """How many jobs were submitted to ``queue``: the Create-Job/Print-Job requests in cupsd's access log."""
    log = (server.root / "log" / "access_log").read_text()
    return sum(f"/printers/{queue} " in line and ("Create-Job" in line or "Print-Job" in line)
               for line in log.splitlines())


# --- reasons -> status model (pure) -----------------------------------------------------------------
@pytest.mark.parametrize("reasons,state,paper,toner,conditions", [
    (["none"], DeviceState.ONLINE, SupplyState.OK, SupplyState.OK, set()),
    (["media-empty-error"], DeviceState.ONLINE, SupplyState.OUT, SupplyState.OK, set()),
    (["media-low-report"], DeviceState.ONLINE, SupplyState.LOW, SupplyState.OK, set()),
    (["media-jam-error"], DeviceState.USER_ERROR, SupplyState.OK, SupplyState.OK, {"jam"}),
    (["door-open-error"], DeviceState.USER_ERROR, SupplyState.OK, SupplyState.OK, {"cover_open"}),
    (["offline-report"], DeviceState.OFFLINE, SupplyState.OK, SupplyState.OK, {"offline"}),
    (["toner-low-warning"], DeviceState.ONLINE, SupplyState.OK, SupplyState.LOW, set()),
    (["toner-empty-error"], DeviceState.ONLINE, SupplyState.OK, SupplyState.OUT, set()),
])
def test_printer_state_reasons_map_to_the_status_model(reasons, state, paper, toner, conditions) -> None:
    st = status_from_attributes({"printer-state": 3, "printer-state-reasons": reasons,
                                 "printer-is-accepting-jobs": True})
    assert (st.state, st.supplies["paper"], st.supplies["toner"], set(st.conditions)) == \
        (state, paper, toner, conditions)


def test_stopped_and_rejecting_queues_are_offline() -> None:
    st = status_from_attributes({"printer-state": 5, "printer-state-reasons": ["paused"]})
    assert st.state == DeviceState.OFFLINE and "stopped" in st.conditions
    st = status_from_attributes({"printer-state": 3, "printer-state-reasons": ["none"],
                                 "printer-is-accepting-jobs": False})
    assert st.state == DeviceState.OFFLINE and "rejecting" in st.conditions
    assert reason_keyword("media-empty-error") == "media-empty"


def test_queue_option_is_required() -> None:
    with pytest.raises(ConfigError) as err:
        CupsA4Printer("a4_printer", {"driver": "cups"})
    assert err.value.key == "devices.a4_printer.options.queue"


# --- a real cupsd ----------------------------------------------------------------------------------------
def test_pdf_job_runs_to_completion_through_cups_pdf(cupsd: CupsServer, make_pdf) -> None:  # noqa: F811
    queue, out = cupsd.pdf_queue()
    printer = _printer(cupsd, queue)
    printer.open()
    assert printer.status().state == DeviceState.ONLINE
    printer.print_pdf(make_pdf(), "kiosk test")  # returns once CUPS reported job-state 9
    assert [p.suffix for p in out.iterdir()] == [".pdf"]  # cups-pdf wrote the job (its text is re-rendered)
    assert _submitted(cupsd, queue) == 1 and _jobs(cupsd, queue) == []  # and the job is purged


@pytest.mark.parametrize("scenario,error", [
    ("media-empty", PaperOut), ("door-open", CoverOpen), ("media-jam", PrintFailed), ("stop", DeviceOffline)])
def test_a_printer_problem_mid_job_cancels_and_raises(cupsd: CupsServer, make_pdf, scenario: str,  # noqa: F811
                                                      error: type) -> None:
    queue = cupsd.fake_queue(scenario)
    printer = _printer(cupsd, queue)
    with pytest.raises(error):
        printer.print_pdf(make_pdf(), "kiosk test", timeout=30)
    assert _submitted(cupsd, queue) == 1
    assert _forgotten(cupsd, queue, printer)  # cancelled and purged: it cannot print later behind the resident's back


def test_problem_stays_in_the_status_after_the_job(cupsd: CupsServer, make_pdf) -> None:  # noqa: F811
    queue = cupsd.fake_queue("media-empty")
    printer = _printer(cupsd, queue)
    with pytest.raises(PaperOut):
        printer.print_pdf(make_pdf(), "kiosk test", timeout=30)
    assert printer.status().supplies["paper"] == SupplyState.OUT
    with pytest.raises(PaperOut) as err:
        printer.print_pdf(make_pdf(), "kiosk test", timeout=30)
    assert "before printing" in err.value.detail
    assert _submitted(cupsd, queue) == 1  # the second was never submitted


def test_an_aborted_job_is_resubmitted_once_then_fails(cupsd: CupsServer, make_pdf) -> None:  # noqa: F811
    queue = cupsd.fake_queue("abort")
    with pytest.raises(PrintFailed):
        _printer(cupsd, queue, retries=1).print_pdf(make_pdf(), "kiosk test", timeout=30)
    assert _submitted(cupsd, queue) == 2 and _forgotten(cupsd, queue, _printer(cupsd, queue))


def test_toner_low_still_completes_and_shows_in_status(cupsd: CupsServer, make_pdf) -> None:  # noqa: F811
    queue = cupsd.fake_queue("toner-low")
    printer = _printer(cupsd, queue)
    printer.print_pdf(make_pdf(), "kiosk test")
    assert printer.status().supplies["toner"] == SupplyState.LOW


def test_timeout_cancels_the_job(cupsd: CupsServer, make_pdf) -> None:  # noqa: F811
    queue = cupsd.fake_queue("slow")
    printer = _printer(cupsd, queue)
    with pytest.raises(DeviceTimeout):
        printer.print_pdf(make_pdf(), "kiosk test", timeout=1.0)
    assert _submitted(cupsd, queue) == 1 and _forgotten(cupsd, queue, printer)


def test_cancel_an_unfinished_job(cupsd: CupsServer, make_pdf) -> None:  # noqa: F811
    queue = cupsd.fake_queue("ok")
    cupsd.run("cupsdisable", queue)
    printer = _printer(cupsd, queue)
    job = printer._submit(make_pdf(), "held", {})
    printer.cancel(job)
    assert printer.job_state(job)[0] == JOB_CANCELED
    printer.cancel(job)  # twice is harmless


@pytest.mark.parametrize("scenario", ["pdf", "media-empty", "abort"])
def test_cupsd_keeps_no_copy_and_no_record_of_a_resident_s_document(cupsd: CupsServer, tmp_path: Path,  # noqa: F811
                                                                   scenario: str) -> None:
    from reportlab.pdfgen import canvas

    marker = b"KIOSK-RESIDENT-37010219850315123X"
    pdf = tmp_path / "certificate.pdf"
    page = canvas.Canvas(str(pdf), pageCompression=0)  # uncompressed: the marker can be found in any copy
    page.drawString(72, 720, marker.decode())
    page.save()
    assert marker in pdf.read_bytes()
    queue, paper = cupsd.pdf_queue() if scenario == "pdf" else (cupsd.fake_queue(scenario), None)
    printer = _printer(cupsd, queue, retries=0)
    if scenario == "pdf":
        printer.print_pdf(pdf, "certificate", timeout=60)
    else:
        with pytest.raises((PaperOut, PrintFailed)):
            printer.print_pdf(pdf, "certificate", timeout=30)
    assert _submitted(cupsd, queue) == 1
    copies = [p for p in cupsd.root.rglob("*") if p.is_file() and not p.is_socket()
              and (paper is None or paper not in p.parents) and marker in p.read_bytes()]
    assert copies == []  # already when the print returns: not in the spool, its temp files, anywhere but on paper
    assert _forgotten(cupsd, queue, printer)  # and no record: lpstat -W completed shows nothing


@pytest.mark.parametrize("tool,error,word", [("cupsdisable", DeviceOffline, "stopped"),
                                             ("cupsreject", PrintFailed, "rejecting")])
def test_stopped_or_rejecting_queue_is_refused_before_submitting(cupsd: CupsServer, make_pdf, tool: str,  # noqa: F811
                                                                  error: type, word: str) -> None:
    queue, _ = cupsd.pdf_queue()
    cupsd.run(tool, queue)
    with pytest.raises(error) as err:
        _printer(cupsd, queue).print_pdf(make_pdf(), "kiosk test")
    assert word in err.value.detail
    assert _jobs(cupsd, queue) == []


def test_unknown_queue_and_unreachable_server(cupsd: CupsServer) -> None:  # noqa: F811
    printer = _printer(cupsd, "no-such-queue")
    with pytest.raises(NoDevice):
        printer.open()
    assert printer.status().state == DeviceState.NO_DEVICE
    gone = CupsA4Printer("a4_printer", {"queue": "x", "server": "/tmp/kiosk-no-cupsd.sock"})
    assert gone.status().state == DeviceState.OFFLINE


# --- command line ------------------------------------------------------------------------------------------
def _cli(server: CupsServer, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CUPS_SERVER": server.server, "KIOSK_CONFIG": ""}
    return subprocess.run([sys.executable, "-m", "kiosk.cli", "hw", "a4", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=90)


def test_cli_print_test_waits_for_completion(cupsd: CupsServer) -> None:  # noqa: F811
    queue, out = cupsd.pdf_queue()
    done = _cli(cupsd, "print-test", "--queue", queue, "--json")
    assert done.returncode == 0, done.stderr
    assert '"printed": true' in done.stdout
    assert len(list(out.iterdir())) == 1


@pytest.mark.parametrize("tool,code", [("cupsdisable", "device_offline"), ("cupsreject", "print_failed")])
def test_cli_print_test_on_a_stopped_or_rejecting_queue_fails_clearly(cupsd: CupsServer, tool: str,  # noqa: F811
                                                                      code: str) -> None:
    queue, _ = cupsd.pdf_queue()
    cupsd.run(tool, queue)
    done = _cli(cupsd, "print-test", "--queue", queue, "--timeout", "50")
    assert done.returncode != 0
    assert code in done.stderr and queue not in done.stdout
    assert "Traceback" not in done.stderr
