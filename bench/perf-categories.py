#!/usr/bin/env python3
"""Where a profile of `serve` spends its time, by part of the door and the store.

    perf script -i perf.data -F comm,tid,ip,sym --no-inline > script.txt
    bench/perf-categories.py script.txt

Each sample counts once, for the first category (in the order below) whose pattern matches
a frame of its stack; the order puts the narrower parts first. bench/door-side-by-side.sh
profile=DIR records perf.data with call graphs (--call-graph dwarf).
"""
import collections
import re
import sys

CATEGORIES = [
    ("door: HMAC-SHA256", r"Signature::verify"),
    ("door: LZ4 compress", r"stored_body|lz4_flex::block::compress"),
    ("door: JSON envelope + UTF-8 check",
     r"webhook::accept|serde_json::de::from_str|core::str::converts::from_utf8"),
    ("door: reading the body", r"webhook::read_body"),
    ("processor: decode (full JSON parse)", r"events::decode|processor::InboxProcessor::decode"),
    ("processor: LZ4 decompress", r"arrived_body|lz4_flex::block::decompress"),
    ("logging (tracing fmt, stderr)", r"tracing_subscriber|tracing_core::event|Event::dispatch"),
    ("sqlite: fsync", r"fdatasync|fsync|unixSync"),
    ("sqlite: WAL/db writes (pwrite)", r"pwrite|unixWrite"),
    ("sqlite: other work", r"sqlite3_step|sqlite3_prepare|sqlite3VdbeExec|sqlite3_"),
    ("sqlx worker: channel/wakeups", r"sqlx_sqlite::connection::worker|flume::"),
    ("processor: other", r"InboxProcessor"),
    ("store: writer task", r"store::sqlite::writer"),
    ("store: record_delivery", r"record_delivery"),
    ("metrics", r"metrics::|metrics_exporter"),
    ("hyper/axum: request parse & response write (with the kernel's TCP)",
     r"hyper::|axum::|http::header"),
    ("tokio: io driver / epoll", r"epoll_wait|tokio::runtime::io|tokio::runtime::driver"),
    ("tokio: park/unpark, scheduling", r"tokio::runtime::scheduler|futex|Parker"),
]


def samples(lines):
    stack = None
    for line in lines:
        if not line.strip():
            continue
        if not line.startswith("\t"):
            if stack is not None:
                yield stack
            stack = []
        else:
            stack.append(line.strip())
    if stack is not None:
        yield stack


def main(path):
    compiled = [(name, re.compile(pattern)) for name, pattern in CATEGORIES]
    counts = collections.Counter()
    total = 0
    with open(path) as lines:
        for stack in samples(lines):
            total += 1
            text = "\n".join(stack)
            name = next((name for name, c in compiled if c.search(text)), "other")
            counts[name] += 1
    for name, count in counts.most_common():
        print(f"{100 * count / total:6.1f}%  {name}")
    print(f"{total} samples")


if __name__ == "__main__":
    main(sys.argv[1])
