"""What ``bookshelf serve`` prepares before uvicorn starts: the workers' metrics folder and its
listening sockets (the real server is started in test_admin_port and test_container)."""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path

import pytest
import typer

from bookshelf.cli import serving
from bookshelf.ops.metrics import MULTIPROCESS_ENV


@pytest.fixture
def no_metrics_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    """None given; and whatever ``serve`` sets is undone after the test (setenv records it)."""
    monkeypatch.setenv(MULTIPROCESS_ENV, "")


@pytest.mark.usefixtures("no_metrics_folder")
def test_the_metrics_folder_is_made_in_the_temporary_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    folder = serving._metrics_directory()
    assert folder is not None
    assert Path(folder).parent == tmp_path
    assert os.environ[MULTIPROCESS_ENV] == folder


def test_a_given_metrics_folder_is_kept(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(MULTIPROCESS_ENV, str(tmp_path))
    assert serving._metrics_directory() is None
    assert os.environ[MULTIPROCESS_ENV] == str(tmp_path)


@pytest.mark.usefixtures("no_metrics_folder")
def test_no_writable_temporary_directory_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What a read-only root filesystem without a volume at /tmp used to crash-loop on."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing"))
    with pytest.raises(typer.Exit) as stopped:
        serving._metrics_directory()
    assert stopped.value.exit_code == 2
    message = capsys.readouterr().err.strip()
    assert len(message.splitlines()) == 1
    assert message.startswith("bookshelf: several workers share their metrics")
    assert "mount a volume there" in message
    assert not os.environ[MULTIPROCESS_ENV]


def test_a_listener_is_bound_and_inheritable_by_the_workers() -> None:
    listener = serving._listener("127.0.0.1", 0)
    try:
        assert listener.getsockname()[0] == "127.0.0.1"
        assert listener.get_inheritable()
    finally:
        listener.close()


def test_a_port_in_use_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(typer.Exit) as stopped:
            serving._listener("127.0.0.1", port)
    assert stopped.value.exit_code == 1
    assert capsys.readouterr().err.strip() == (
        f"bookshelf: cannot listen on 127.0.0.1:{port}: Address already in use"
    )
