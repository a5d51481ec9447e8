"""The fallback outbox's durable journal: round trips, recovery from torn and corrupt tails,
compaction, locking, a SIGKILLed writer, concurrent threads and a model-based property test.

No Redis needed. Loops that reopen the journal many times use ``fsync=False``: they test what
recovery makes of the bytes in the file, which fsync does not change.
"""

from __future__ import annotations

import fcntl
import logging
import os
import random
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rmem._errors import ValidationError
from rmem._journal import Journal

ROOT = Path(__file__).resolve().parents[1]
HEADER_LEN = 10
FRAME_OVERHEAD = 9 + 8  # kind, length and CRC, then the sequence number
COMPACTED_LEN = HEADER_LEN + FRAME_OVERHEAD


def payloads(n: int) -> list[bytes]:
    # Varied sizes (including empty) so frame boundaries do not fall on a regular stride.
    return [b"entry-%d:" % i + b"z" * (i * 7 % 23) for i in range(n)]


def fill(path: Path, items: list[bytes]) -> list[int]:
    """Append ``items`` to a new journal; return the file size before each append and at end."""
    sizes = []
    with Journal(path, fsync=False) as journal:
        for item in items:
            sizes.append(path.stat().st_size)
            journal.append(item)
        sizes.append(path.stat().st_size)
    return sizes


def test_append_pending_ack_round_trip(tmp_path: Path) -> None:
    with Journal(tmp_path / "j") as journal:
        assert journal.path == tmp_path / "j"
        assert journal.torn_bytes == 0
        assert journal.pending() == []
        assert [journal.append(p) for p in (b"a", b"", b"c")] == [1, 2, 3]
        assert journal.pending() == [(1, b"a"), (2, b""), (3, b"c")]
        journal.ack(2)
        assert journal.pending() == [(3, b"c")]
        journal.ack(1)  # already acked: nothing changes
        assert journal.pending() == [(3, b"c")]
        journal.ack(3)
        assert journal.pending() == []


def test_reopen_keeps_unacked_entries_and_sequence_continues(tmp_path: Path) -> None:
    path = tmp_path / "j"
    with Journal(path) as journal:
        for item in payloads(3):
            journal.append(item)
    with Journal(path) as journal:
        assert journal.pending() == list(enumerate(payloads(3), start=1))
        assert journal.append(b"next") == 4
    with Journal(path) as journal:
        assert journal.pending()[-1] == (4, b"next")


def test_ack_is_persisted_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "j"
    with Journal(path) as journal:
        for item in payloads(5):
            journal.append(item)
        journal.ack(3)
    with Journal(path) as journal:
        assert [seq for seq, _ in journal.pending()] == [4, 5]
        assert journal.append(b"x") == 6


def test_compaction_shrinks_the_file_and_numbering_continues(tmp_path: Path) -> None:
    path = tmp_path / "j"
    (tmp_path / "j.compact").write_bytes(b"left by a crash mid-compaction")
    with Journal(path) as journal:
        assert not (tmp_path / "j.compact").exists()
        for item in payloads(50):
            journal.append(item)
        journal.ack(49)
        assert path.stat().st_size > 50 * FRAME_OVERHEAD
        journal.ack(50)
        assert path.stat().st_size == COMPACTED_LEN
        assert journal.append(b"after") == 51
        journal.ack(50)  # already done: no write, no second compaction
    assert sorted(p.name for p in tmp_path.iterdir()) == ["j"]
    with Journal(path) as journal:
        assert journal.pending() == [(51, b"after")]
        journal.ack(51)
    with Journal(path) as journal:
        assert journal.pending() == []
        assert journal.append(b"later") == 52


def test_compaction_keeps_the_file_mode(tmp_path: Path) -> None:
    path = tmp_path / "j"
    with Journal(path) as journal:
        os.chmod(path, 0o640)
        journal.ack(journal.append(b"x"))
    assert path.stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize("last_frame", ["entry", "ack"])
def test_torn_tail_at_every_offset_of_the_last_frame(tmp_path: Path, last_frame: str) -> None:
    path = tmp_path / "j"
    items = payloads(4)
    with Journal(path, fsync=False) as journal:
        for item in items[:-1]:
            journal.append(item)
        start = path.stat().st_size
        if last_frame == "entry":
            journal.append(items[-1])
        else:
            journal.ack(2)  # lost with its frame, so entries 1 and 2 come back as pending
    survivors = list(enumerate(items[:-1], start=1))
    whole = path.read_bytes()
    assert len(whole) > start
    for cut in range(start, len(whole)):
        path.write_bytes(whole[:cut])
        with Journal(path, fsync=False) as journal:
            assert journal.pending() == survivors, cut
            assert journal.torn_bytes == cut - start
            assert path.stat().st_size == start
            assert journal.append(b"new") == len(items)
        with Journal(path, fsync=False) as journal:
            assert journal.torn_bytes == 0
            assert journal.pending() == [*survivors, (len(items), b"new")]


def test_garbage_after_the_last_frame_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "j"
    items = payloads(4)
    sizes = fill(path, items)
    whole = path.read_bytes()
    rng = random.Random(1234)
    garbage = [b"\x00", b"\x01", b"\x01\x00\x00\x00\x05", b"\x01\xff\xff\xff\xff" + b"\x00" * 20]
    garbage += [rng.randbytes(rng.randint(1, 200)) for _ in range(30)]
    first_frame = whole[HEADER_LEN : sizes[1]]
    garbage.append(first_frame[:-1] + b"!")  # a real frame with its CRC off
    garbage.append(first_frame)  # an intact frame, but sequence 1 cannot follow 4
    for junk in garbage:
        path.write_bytes(whole + junk)
        with Journal(path, fsync=False) as journal:
            assert journal.pending() == list(enumerate(items, start=1))
            assert journal.torn_bytes == len(junk)
            assert journal.append(b"new") == 5
        with Journal(path, fsync=False) as journal:
            assert journal.pending()[-1] == (5, b"new")
            assert len(journal.pending()) == 5


def test_truncation_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "j"
    fill(path, payloads(2))
    with path.open("ab") as f:
        f.write(b"\x01\x02\x03")
    with caplog.at_level(logging.WARNING, logger="rmem.journal"), Journal(path) as journal:
        assert journal.torn_bytes == 3
    [record] = [r for r in caplog.records if r.name == "rmem.journal"]
    assert record.levelno == logging.WARNING
    assert "dropped 3 bytes" in record.getMessage()
    assert str(path) in record.getMessage()


def test_a_corrupt_middle_frame_drops_it_and_everything_after(tmp_path: Path) -> None:
    path = tmp_path / "j"
    items = payloads(5)
    sizes = fill(path, items)
    whole = path.read_bytes()
    # Every byte of the third frame: kind, length, CRC, sequence number and payload.
    for i in range(sizes[2], sizes[3]):
        path.write_bytes(whole[:i] + bytes([whole[i] ^ 0xFF]) + whole[i + 1 :])
        with Journal(path, fsync=False) as journal:
            assert journal.pending() == [(1, items[0]), (2, items[1])], i
            assert journal.torn_bytes == len(whole) - sizes[2]
            assert journal.append(b"new") == 3


def test_a_partly_written_header_starts_afresh(tmp_path: Path) -> None:
    path = tmp_path / "j"
    fill(path, [])
    header = path.read_bytes()
    assert len(header) == HEADER_LEN
    for cut in range(HEADER_LEN):
        path.write_bytes(header[:cut])
        with Journal(path, fsync=False) as journal:
            assert journal.torn_bytes == cut
            assert journal.append(b"x") == 1
        assert path.read_bytes().startswith(header)


def test_second_journal_on_the_same_path_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j"
    with Journal(path) as journal:
        journal.append(b"x")
        with pytest.raises(ValidationError, match="in use") as caught:
            Journal(path)
        assert str(path) in str(caught.value)
        journal.ack(1)  # compaction renames a new file over the path; the lock comes with it
        with pytest.raises(ValidationError, match="in use"):
            Journal(path)
    with Journal(path) as journal:  # released by close
        assert journal.append(b"y") == 2


def test_an_opener_racing_a_compaction_still_finds_the_lock_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "j"
    real_flock = fcntl.flock
    with Journal(path) as holder:
        holder.append(b"x")

        def flock_after_compaction(fd: int, operation: int) -> None:
            # The second opener has opened the old file; the holder now renames a new one
            # over the path and lets the old one go, so locking the old one succeeds.
            monkeypatch.setattr(fcntl, "flock", real_flock)
            holder.ack(1)
            real_flock(fd, operation)

        monkeypatch.setattr(fcntl, "flock", flock_after_compaction)
        with pytest.raises(ValidationError, match="in use"):
            Journal(path)
        assert holder.append(b"y") == 2


@pytest.mark.parametrize(
    "content",
    [b"hello, not a journal\n", b"RMEMX", b"RMEMJRNL\x00\x02" + b"\x00" * 30],
    ids=["text", "short", "other-version"],
)
def test_a_file_that_is_not_a_journal_is_refused_and_left_alone(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(content)
    (tmp_path / "notes.txt.compact").write_bytes(b"someone else's")
    with pytest.raises(ValidationError, match="not an rmem journal") as caught:
        Journal(path)
    assert str(path) in str(caught.value)
    assert path.read_bytes() == content
    assert (tmp_path / "notes.txt.compact").read_bytes() == b"someone else's"
    # Refusing released the lock: a second try gets the same answer, not "in use".
    with pytest.raises(ValidationError, match="not an rmem journal"):
        Journal(path)


def test_a_failed_write_leaves_no_partial_frame_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "j"
    real_pwrite = os.pwrite

    def disk_full(fd: int, data: bytes, offset: int) -> int:
        if len(data) > 5:
            return real_pwrite(fd, bytes(data)[:5], offset)  # the first 5 bytes land
        raise OSError(28, "No space left on device")

    with Journal(path) as journal:
        journal.append(b"before")
        monkeypatch.setattr(os, "pwrite", disk_full)
        with pytest.raises(OSError, match="No space"):
            journal.append(b"lost" * 50)  # longer than what follows, so no overwrite hides it
        monkeypatch.undo()
        assert journal.pending() == [(1, b"before")]
        assert journal.append(b"after") == 2
    with Journal(path) as journal:
        assert journal.torn_bytes == 0
        assert journal.pending() == [(1, b"before"), (2, b"after")]


def test_closed_journal_refuses_calls_and_close_is_idempotent(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j")
    journal.append(b"x")
    journal.close()
    journal.close()
    with pytest.raises(ValidationError, match="closed"):
        journal.append(b"y")
    with pytest.raises(ValidationError, match="closed"):
        journal.ack(1)


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with Journal(tmp_path / "j") as journal:
        journal.append(b"x")
        for bad in ("text", bytearray(b"x"), None):
            with pytest.raises(ValidationError):
                journal.append(bad)  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="issued up to 1"):
            journal.ack(2)
        for bad_seq in (-1, True, 1.0):
            with pytest.raises(ValidationError):
                journal.ack(bad_seq)  # type: ignore[arg-type]
        assert journal.pending() == [(1, b"x")]


def test_threads_append_and_replay_concurrently(tmp_path: Path) -> None:
    path = tmp_path / "j"
    writers, per_writer = 4, 100
    done = threading.Event()
    replayed: list[tuple[int, bytes]] = []

    with Journal(path) as journal:

        def write(w: int) -> None:
            for i in range(per_writer):
                journal.append(b"%d-%d" % (w, i))

        def replay() -> None:
            while not done.is_set() or journal.pending():
                batch = journal.pending()
                if batch:
                    replayed.extend(batch)
                    journal.ack(batch[-1][0])

        threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
        replayer = threading.Thread(target=replay)
        for t in [*threads, replayer]:
            t.start()
        for t in threads:
            t.join()
        done.set()
        replayer.join()

    assert [seq for seq, _ in replayed] == list(range(1, writers * per_writer + 1))
    assert sorted(e for _, e in replayed) == sorted(
        b"%d-%d" % (w, i) for w in range(writers) for i in range(per_writer)
    )
    with Journal(path) as journal:
        assert journal.pending() == []
        assert journal.append(b"x") == writers * per_writer + 1


CHILD = textwrap.dedent(
    """
    import sys
    from rmem._journal import Journal

    journal = Journal(sys.argv[1])
    seq = 0
    while True:
        seq = journal.append(b"entry-%d" % (seq + 1))
        print("A", seq, flush=True)
        if seq % 7 == 0:
            journal.ack(seq - 3)
            print("K", seq - 3, flush=True)
        if seq % 40 == 0:
            journal.ack(seq)  # compacts: a kill may land mid-compaction
            print("K", seq, flush=True)
    """
)


@pytest.mark.parametrize("kill_after", [1, 90, 250])
def test_sigkilled_writer_loses_nothing_it_reported(tmp_path: Path, kill_after: int) -> None:
    path = tmp_path / "j"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert child.stdout is not None
    lines: list[bytes] = []
    try:
        deadline = time.monotonic() + 30
        while sum(line.startswith(b"A") for line in lines) < kill_after:
            line = child.stdout.readline()
            assert line, child.stderr.read() if child.stderr else b""
            lines.append(line)
            assert time.monotonic() < deadline
        with pytest.raises(ValidationError, match="in use"):  # held by another process
            Journal(path)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        rest, _ = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL
    lines += rest.splitlines(keepends=True)
    if lines and not lines[-1].endswith(b"\n"):
        lines.pop()  # a report cut off by the kill
    appended = max(int(line.split()[1]) for line in lines if line.startswith(b"A"))
    acked = max((int(line.split()[1]) for line in lines if line.startswith(b"K")), default=0)

    with Journal(path) as journal:
        pending = journal.pending()
        seqs = [seq for seq, _ in pending]
        assert all(entry == b"entry-%d" % seq for seq, entry in pending)
        if seqs:
            # No reported ack undone, no gap, no reported append missing.
            assert seqs[0] > acked
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
            assert seqs[-1] >= appended
        else:
            # Everything was acked, and the numbering had reached every reported append.
            assert journal.append(b"probe") > appended


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.binary(max_size=24)),
        st.tuples(st.just("ack"), st.integers(0, 30)),
        st.tuples(st.just("reopen"), st.just(b"")),
        st.tuples(st.just("garbage"), st.binary(min_size=1, max_size=24)),
    ),
    max_size=40,
)


@settings(max_examples=100, deadline=None, database=None)
@given(OPS)
def test_journal_behaves_like_a_list_with_a_cursor(ops: list[tuple[str, object]]) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "j"
        model: list[tuple[int, bytes]] = []
        last = acked = 0
        journal = Journal(path, fsync=False)
        try:
            for op, arg in ops:
                if op == "append":
                    assert isinstance(arg, bytes)
                    last += 1
                    assert journal.append(arg) == last
                    model.append((last, arg))
                elif op == "ack":
                    assert isinstance(arg, int)
                    journal.ack(min(arg, last))
                    acked = max(acked, min(arg, last))
                    model = [e for e in model if e[0] > acked]
                else:
                    journal.close()
                    garbage = arg if op == "garbage" else b""
                    assert isinstance(garbage, bytes)
                    with path.open("ab") as f:
                        f.write(garbage)
                    journal = Journal(path, fsync=False)
                    assert journal.torn_bytes == len(garbage)
                assert journal.pending() == model
                if last and acked == last:
                    assert path.stat().st_size == COMPACTED_LEN
        finally:
            journal.close()
        with Journal(path, fsync=False) as journal:
            assert journal.pending() == model
            assert journal.append(b"end") == last + 1
