"""Pytest fixtures that give each test its own nsqd process."""

import pytest

from harness import Nsqd


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


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attaches the nsqd log to a failing test's report."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    factory_dirs = item.funcargs.get("tmp_path")
    if factory_dirs is None:
        return
    for log in sorted(factory_dirs.glob("nsqd-*/nsqd.log")):
        text = log.read_text(errors="replace")[-3000:]
        report.sections.append((f"nsqd log {log.parent.name}", text))
