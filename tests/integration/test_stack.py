"""The local stack manager against the running services."""

import psutil
import pytest

from tormenta import stack as stack_mod

pytestmark = pytest.mark.integration


def test_every_service_healthy(stack):
    rows = stack_mod.status()
    assert [r.name for r in rows] == stack_mod.ALL_PROCESSES
    assert all(r.healthy and r.pid for r in rows), rows


def test_up_is_idempotent(stack):
    started = stack_mod.up()
    assert not any(started.values()), started


def test_services_listen_on_loopback_only(stack):
    pm = stack_mod.manager()
    for name in stack_mod.ALL_PROCESSES:
        proc = pm.running(name)
        assert proc is not None, name
        for p in [proc, *proc.children(recursive=True)]:
            for c in p.net_connections(kind="inet"):
                if c.status == psutil.CONN_LISTEN:
                    assert c.laddr.ip in ("127.0.0.1", "::ffff:127.0.0.1", "::1"), (name, c.laddr)


def test_up_made_the_geo_device_key_private_and_the_endpoint_loads_it(stack):
    import stat

    from tormenta.devices import KEY_FILE, device_token, load_key

    path = stack.secrets_dir / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = load_key()  # where the geo endpoint and the phones look for it
    assert key == path.read_text().strip().encode() and len(device_token(key, "dev-1")) == 32
