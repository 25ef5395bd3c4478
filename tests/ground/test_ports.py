"""incidentfox/ports.py: a free port for a server that binds it later is never one the kernel may
give an outgoing connection meanwhile, is bindable, and is not handed out twice."""

from __future__ import annotations

import socket

from incidentfox import ports


def test_ports_are_below_the_ephemeral_range_bindable_and_never_repeated() -> None:
    top = ports.ephemeral_start()
    given = [ports.free_port() for _ in range(50)]
    assert len(set(given)) == 50
    assert all(ports.LOWEST <= p < top for p in given)
    for p in given[:5]:
        with socket.socket() as s:
            s.bind(("127.0.0.1", p))     # still free: nothing was left listening


def test_a_port_something_listens_on_is_skipped(monkeypatch) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", ports.free_port()))
        busy.listen()
        taken = busy.getsockname()[1]
        spare = ports.free_port()
        ports._given.difference_update({taken, spare})      # skipped for listening, not for being given
        draws = iter([taken, spare])
        monkeypatch.setattr(ports._random, "randrange", lambda *a: next(draws))
        assert ports.free_port() == spare


def test_without_a_range_file_the_linux_default_is_assumed(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(ports, "_RANGE_FILE", tmp_path / "absent")
    assert ports.ephemeral_start() == 32768
    (tmp_path / "range").write_text("40000\t60999\n")
    monkeypatch.setattr(ports, "_RANGE_FILE", tmp_path / "range")
    assert ports.ephemeral_start() == 40000
