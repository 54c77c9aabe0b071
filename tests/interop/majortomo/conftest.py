"""Fixtures for majortomo's own system tests (tests/system/test_system.py),
with plantd-broker in place of majortomo's broker.

majortomo's tests import run_broker and run_worker from this module. The
worker is majortomo's own Worker; the broker is the plantd-broker binary
named by PLANTD_BROKER, bound on the socket URL the test chose (clients and
workers share it, as with majortomo's broker).
"""
import logging
import os
import subprocess
import tempfile
import time
from contextlib import contextmanager
from multiprocessing import Process

import pytest
import zmq

from majortomo import Worker, WorkerRequestsIterator

HEARTBEAT_INTERVAL = 1.0
HEARTBEAT_TIMEOUT = 3.0


@pytest.fixture()
def socket_url():
    fh, path = tempfile.mkstemp(prefix='plantd-majortomo-')
    os.close(fh)
    try:
        yield 'ipc://' + path
    finally:
        # The broker removes its ipc:// socket file when it stops.
        if os.path.exists(path):
            os.unlink(path)


@contextmanager
def run_broker(bind):
    """plantd-broker on `bind` (its second Majordomo endpoint on a spare ipc
    path), no buses, no HTTP; stopped with SIGTERM like majortomo's."""
    second = bind + '-workers'
    config = tempfile.NamedTemporaryFile('w', suffix='.yaml', delete=False)
    config.write('endpoint: "%s"\nclient_endpoint: "%s"\nbuses: []\nhealth:\n  port: 0\n'
                 'heartbeat_interval: %dms\nheartbeat_liveness: %d\nstore:\n  enabled: false\n'
                 % (bind, second, HEARTBEAT_INTERVAL * 1000,
                    int(HEARTBEAT_TIMEOUT / HEARTBEAT_INTERVAL)))
    config.close()
    proc = subprocess.Popen([os.environ['PLANTD_BROKER'], '--config', config.name],
                            stderr=subprocess.PIPE, text=True)
    try:
        # Ready when it says so: majortomo's clients connect right away.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line or 'broker started' in line:
                break
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=5.0)
        os.unlink(config.name)
        if os.path.exists(second[len('ipc://'):]):
            os.unlink(second[len('ipc://'):])


@contextmanager
def run_worker(connect, service_name='my-service', handler_func=lambda r: r, send_partials=False):
    """majortomo's Worker in a child process, as its own conftest runs it."""

    def _worker_process():
        zmq.Context.instance().destroy()
        logging.basicConfig(level=logging.INFO)
        worker = Worker(broker_url=connect, service_name=service_name,
                        heartbeat_interval=HEARTBEAT_INTERVAL,
                        heartbeat_timeout=HEARTBEAT_TIMEOUT, zmq_linger=500)
        worker_iter = WorkerRequestsIterator(worker)
        worker_iter.stop_on_signal()
        for request in worker_iter:
            response = list(handler_func(request))
            if send_partials and len(response) > 1:
                worker_iter.send_reply_from_iterable(response[0:-1], final=response[-1])
            else:
                worker_iter.send_reply_final(response)

    proc = Process(target=_worker_process)
    try:
        proc.start()
        yield
        if not proc.is_alive():
            raise RuntimeError("Worker process exited prematurely with code %d" % proc.exitcode)
    finally:
        proc.terminate()
        proc.join()
