"""When a site outgrows one machine: two server nodes on PostgreSQL behind HAProxy (the file in
deploy/proxy/, ports and paths replaced), kiosks submitting and booking through the proxy over
TLS, and one node killed with -9 mid-load. Nothing acknowledged is lost, nothing is stored
twice, no seat is overbooked, and the kiosks carry on through the other node."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from onsite_server import devserver
from onsite_server.models import Booking, Site, Slot, Submission
from onsite_server.tls import ensure_self_signed

from ..cli_in_process import run_cli
from ..conftest import LiveServer
from ..helpers import auth, gen_event, live_kiosk_and_members
from .test_drills import Load, _env

pytestmark = [pytest.mark.slow, pytest.mark.drill]
REPO = Path(__file__).resolve().parents[3]
SEATS = 8


def _haproxy_config(tmp: Path, port: int, pem: Path, nodes: list[str]) -> Path:
    text = (REPO / "deploy" / "proxy" / "haproxy.cfg").read_text()
    text = text.replace("bind :443 ssl crt /etc/onsite-wellness/tls/proxy.pem",
                        f"bind 127.0.0.1:{port} ssl crt {pem}")
    servers = "".join(f"    server node{i + 1} {node} check\n" for i, node in enumerate(nodes))
    text = re.sub(r"(    server node\d .*\n)+", servers, text)
    path = tmp / "haproxy.cfg"
    path.write_text(text)
    return path


def _proxy_pem(tmp: Path) -> Path:
    (tmp / "tls").mkdir(mode=0o700)
    cert, key = ensure_self_signed(tmp / "tls")
    pem = tmp / "proxy.pem"
    pem.write_bytes(cert.read_bytes() + key.read_bytes())
    return pem


class Bookers:
    """Kiosk threads booking one slot for different members through the proxy."""

    def __init__(self, url: str, token: str, refs: list[str], slot_id: str) -> None:
        self.answers: list[tuple[int, str | None]] = []
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._book, args=(url, token, ref, slot_id),
                                          daemon=True) for ref in refs]

    def _book(self, url: str, token: str, ref: str, slot_id: str) -> None:
        body = {"idempotency_key": str(uuid.uuid4()), "member_ref": ref, "slot_id": slot_id}
        for _attempt in range(20):  # a kiosk retries the same request until it gets an answer
            try:
                resp = requests.post(url + "/api/v1/bookings", json=body, headers=auth(token),
                                     timeout=30)
            except requests.RequestException:
                time.sleep(0.2)
                continue
            if resp.status_code >= 500:
                time.sleep(0.2)
                continue
            with self._lock:
                self.answers.append((resp.status_code, resp.json().get("status")))
            return

    def run(self) -> None:
        """Start every booking thread."""
        for thread in self._threads:
            thread.start()

    def join(self) -> None:
        """Wait for every booking thread."""
        for thread in self._threads:
            thread.join(120)


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed")
def test_two_nodes_behind_the_proxy_survive_a_node_killed_under_load(
        database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("several nodes share PostgreSQL (docs/deployment.md)")
    # The same secret and signing keys on every node, from shared settings (docs/deployment.md):
    # the keys made once, and MULTI_NODE so that no node makes its own.
    keys = tmp_path / "etc" / "keys"
    made = run_cli({}, "make-signing-keys", "--dir", str(keys))  # in this process: the nodes
    assert made.exit_code == 0, made.output  # are what this test is about
    base = _env(database_url, tmp_path, ONSITE_SIGNING_KEY_DIR=str(keys), ONSITE_MULTI_NODE="1",
                ONSITE_TRUSTED_PROXIES="1", ONSITE_SECRET_KEY="one-secret-for-every-node")
    nodes: list[subprocess.Popen[bytes]] = []
    proxy: subprocess.Popen[bytes] | None = None
    proxy_log = (tmp_path / "haproxy.log").open("wb")
    try:
        addresses: list[str] = []
        for n in (1, 2):
            env = {**base, "ONSITE_INSTANCE_PATH": str(tmp_path / f"node{n}")}
            proc, node_url = devserver.start_server(env, tmp_path / f"node{n}.log",
                                                    migrate=n == 1)
            nodes.append(proc)
            addresses.append(node_url.removeprefix("http://"))
        # Every node publishes the keys made once, and none made a secret or keys of its own.
        published = [requests.get(f"http://{a}/.well-known/jwks.json", timeout=10).json()
                     for a in addresses]
        assert published[0] == published[1] and len(published[0]["keys"]) == 2
        for n in (1, 2):
            assert not (tmp_path / f"node{n}" / "keys").exists()
            assert not (tmp_path / f"node{n}" / "secret_key").exists()
        port = devserver.free_port()
        config = _haproxy_config(tmp_path, port, _proxy_pem(tmp_path), addresses)
        checked = subprocess.run(["haproxy", "-c", "-f", str(config)], capture_output=True,
                                 text=True, check=False)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        proxy = subprocess.Popen(["haproxy", "-f", str(config)], stdout=proxy_log,
                                 stderr=subprocess.STDOUT)
        url = f"https://127.0.0.1:{port}"
        # The kiosks trust the proxy's certificate, as they pin a site's own.
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "tls" / "tls_cert.pem"))
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(url + "/healthz", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, (tmp_path / "haproxy.log").read_text()
            time.sleep(0.2)
        live = LiveServer(url, {**base, "ONSITE_INSTANCE_PATH": str(tmp_path / "node1")},
                          tmp_path / "node1", tmp_path / "node1.log")
        token, refs = live_kiosk_and_members(live, database_url, 3 * SEATS)
        engine = create_engine(database_url)
        with Session(engine) as session, session.begin():
            site = session.scalars(select(Site).where(Site.slug == "live")).one()
            event = gen_event(session, site, capacity=SEATS)
            slot_id = session.scalars(select(Slot.public_id).where(Slot.event_id == event.id)
                                      ).one()

        load = Load(url, token, refs, threads=4)
        load.start()
        bookers = Bookers(url, token, refs, slot_id)
        try:
            while len(load.acked) < 60:
                time.sleep(0.05)
            bookers.run()
            devserver.kill_server(nodes[0])  # node 1, master and workers, at once
            acked_at_kill = len(load.acked)
            time.sleep(6)
            acked_after = len(load.acked) - acked_at_kill
        finally:
            load.finish()
            bookers.join()
    finally:
        if proxy is not None:
            proxy.terminate()
            proxy.wait(timeout=20)
        proxy_log.close()
        for proc in nodes:
            devserver.stop_server(proc)

    try:
        with Session(engine) as session:
            stored = list(session.scalars(select(Submission.idempotency_key)))
            seats = session.scalars(select(Slot.booked_count).where(Slot.public_id == slot_id)
                                    ).one()
            booked = session.scalar(select(func.count()).select_from(Booking).join(Slot)
                                    .where(Slot.public_id == slot_id,
                                           Booking.status == "booked"))
    finally:
        engine.dispose()
    lost = load.acked - set(stored)
    statuses = {str(k): v for k, v in sorted(load.statuses.items())}
    report = {"acked": len(load.acked), "acked_after_kill": acked_after,
              "statuses": statuses, "bookings": len(bookers.answers), "booked": booked,
              "seats": SEATS}
    print("nodes drill:", json.dumps(report))
    assert lost == set(), f"{len(lost)} acknowledged items lost"
    assert len(stored) == len(set(stored)), "an item was stored twice"
    assert acked_after > 0, "the kiosks did not carry on through the other node"
    assert seats == booked <= SEATS, "a seat was overbooked"
    assert booked == SEATS  # 24 members for 8 seats: every seat went
    assert all(status in ("booked", "waitlisted") for _code, status in bookers.answers)
