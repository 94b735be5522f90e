"""Request and event ids: unique within a process and across the processes of one deployment."""

from __future__ import annotations

import multiprocessing
import os

import pytest
from llm_client.context import new_request_id


def test_ids_are_unique_and_share_the_process_prefix() -> None:
    ids = [new_request_id() for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert len({i[:12] for i in ids}) == 1


def test_a_forked_child_does_not_repeat_its_parents_ids() -> None:
    """Prefork workers (gunicorn, Celery) fork after import: ids must not collide across them."""
    if not hasattr(os, "fork"):
        pytest.skip("no fork on this platform")
    parent = [new_request_id() for _ in range(3)]
    reader, writer = multiprocessing.get_context("fork").Pipe(duplex=False)
    pid = os.fork()
    if pid == 0:  # the child: report its next ids and leave without running pytest's teardown
        try:
            writer.send([new_request_id() for _ in range(3)])
        finally:
            os._exit(0)
    child = reader.recv()
    os.waitpid(pid, 0)
    mine = [new_request_id() for _ in range(3)]
    assert not set(child) & set(parent + mine)
    assert child[0][:12] != mine[0][:12]  # a new random prefix, not just a different count
