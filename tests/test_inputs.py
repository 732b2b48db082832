"""The one input gate (audit.inputs): what every read path gets — no hang on a FIFO, folders and devices named,
a size cap, a byte-order mark accepted, the exact line of a bad byte."""

from __future__ import annotations

import os
import threading

import pytest

from audit.errors import AuditInputError
from audit.inputs import (check_input_file, check_input_folder, iter_input_lines, read_input_bytes,
                          read_input_text)


def test_a_fifo_is_refused_at_once_without_a_writer(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []
    thread = threading.Thread(target=lambda: outcome.append(pytest.raises(AuditInputError, read_input_text, fifo,
                                                                          "corpus file").value), daemon=True)
    thread.start()
    thread.join(5)
    assert not thread.is_alive(), "the open blocked on a FIFO"
    assert "not a regular file (a FIFO); give a corpus file" in str(outcome[0])
    for read in (lambda: list(iter_input_lines(fifo, "corpus file")), lambda: check_input_file(fifo, "x")):
        with pytest.raises(AuditInputError, match="a FIFO"):
            read()


def test_a_byte_order_mark_is_dropped_and_newlines_are_universal(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbfsent_more,sent_less\r\na,b\rc,d\n")
    assert read_input_text(path, "CSV file") == "sent_more,sent_less\na,b\nc,d\n"
    assert [line for _, line in iter_input_lines(path, "CSV file")][0] == "sent_more,sent_less"


def test_a_bad_byte_names_its_own_line_in_whole_and_streamed_reads(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_bytes(b"good line\n" * 1500 + b"bad \xff\n" + b"good again\n" * 3)
    with pytest.raises(AuditInputError, match=r"is not UTF-8 text \(line 1501: invalid start byte\)"):
        read_input_text(path, "corpus file")
    with pytest.raises(AuditInputError, match="line 1501 is not UTF-8"):
        list(iter_input_lines(path, "corpus file"))


def test_size_and_line_limits_and_kinds_are_named(tmp_path):
    big = tmp_path / "big.json"
    big.write_bytes(b"x" * (2 << 20))
    with pytest.raises(AuditInputError, match="results file is larger than 1 MiB"):
        read_input_bytes(big, "results file", limit=1 << 20)
    with pytest.raises(AuditInputError, match="line 1 of the corpus file is longer than 1 MiB"):
        list(iter_input_lines(big, "corpus file", line_limit=1 << 20))
    with pytest.raises(AuditInputError, match="is a folder; give a policy file"):
        read_input_text(tmp_path, "policy file")
    with pytest.raises(AuditInputError, match=r"not a folder \(a file\)"):
        check_input_folder(big, "the WinoBias data folder")
    with pytest.raises(AuditInputError, match="no such folder"):
        check_input_folder(tmp_path / "absent", "the WinoBias data folder")
    with pytest.raises(AuditInputError, match=r"/dev/null: not a regular file \(a device\)"):
        read_input_text("/dev/null", "probe-set file")
    assert check_input_folder(tmp_path, "x") == tmp_path
