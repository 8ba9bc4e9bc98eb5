"""torch_threads: a block runs with its thread count, and overlapping blocks in two threads leave the process
at the count it had before (the race of set-then-restore would leave it at one thread)."""

from __future__ import annotations

import threading

import torch

from movseg_ros.accel.threads import torch_threads


def test_a_block_runs_with_its_count_and_the_count_comes_back() -> None:
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with torch_threads(0):  # 0 leaves the setting alone
        assert torch.get_num_threads() == before


def test_overlapping_blocks_in_two_threads_restore_the_process_count() -> None:
    torch.set_num_threads(2)
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()

    def first() -> None:  # enters first, leaves while the second is still inside
        with torch_threads(1):
            first_in.set()
            second_in.wait(10)
        first_out.set()

    def second() -> None:  # enters after the first (seeing 1 thread set), leaves last
        first_in.wait(10)
        with torch_threads(1):
            second_in.set()
            first_out.wait(10)
            assert torch.get_num_threads() == 1  # the first's exit did not take the count from under it

    workers = [threading.Thread(target=first), threading.Thread(target=second)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(20)
    assert torch.get_num_threads() == 2  # a naive restore would have left 1 (what the second saw on entry)
