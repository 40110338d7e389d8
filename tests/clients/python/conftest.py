"""Pytest fixtures that give each test its own nsqd and nsqlookupd processes."""

import pytest

from harness import Nsqd, Nsqlookupd


@pytest.fixture
def nsqd_factory(tmp_path):
    """Starts nsqd instances with extra flags; all are stopped after the test."""
    started = []

    def start(*extra_args):
        daemon = Nsqd(tmp_path / f"nsqd-{len(started)}", extra_args)
        started.append(daemon)
        return daemon.start()

    yield start
    for daemon in started:
        daemon.stop()


@pytest.fixture
def nsqd(nsqd_factory):
    """One nsqd with default settings."""
    return nsqd_factory()


@pytest.fixture
def lookupd_factory(tmp_path):
    """Starts nsqlookupd instances with extra flags; all are stopped after the test."""
    started = []

    def start(*extra_args):
        daemon = Nsqlookupd(tmp_path / f"nsqlookupd-{len(started)}", extra_args)
        started.append(daemon)
        return daemon.start()

    yield start
    for daemon in started:
        daemon.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attaches the daemon logs to a failing test's report."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    factory_dirs = item.funcargs.get("tmp_path")
    if factory_dirs is None:
        return
    logs = sorted(factory_dirs.glob("nsqd-*/nsqd.log"))
    logs += sorted(factory_dirs.glob("nsqlookupd-*/nsqlookupd.log"))
    for log in logs:
        text = log.read_text(errors="replace")[-3000:]
        report.sections.append((f"{log.stem} log {log.parent.name}", text))
