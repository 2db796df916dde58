"""Disclaimer insertion: time and peak memory, as ratios against baselines from the same run.

    .venv/bin/python bench/disclaimer_bench.py

Messages: a 100 KB HTML message and a 20 MB message with attachments. Baselines: splicing
the same bytes in by hand (the floor: one copy of the message) and a parse plus re-serialise
with the ``email`` package (what a typical gateway does, and what we must not do). Then the
MIME-3 inputs (reliability-tests.md) at n and 2n: the ratio should stay near 2 (linear).
"""

from __future__ import annotations

import base64
import email
import email.policy
import os
import statistics
import time
import tracemalloc
from collections.abc import Callable

from filters.disclaimer import DEFAULT_FILE, Notice, add_notice

NOTICE = Notice.load(DEFAULT_FILE)
HEAD = b"From: alice@c4f.example\r\nTo: bob@council.example\r\nSubject: b\r\nMIME-Version: 1.0\r\n"


def html_message(size: int) -> bytes:
    row = b"<tr><td>Visit note</td><td>Saturday 10:00, room 2, supervised contact</td></tr>\r\n"
    rows = row * (size // len(row))
    return (
        HEAD + b"Content-Type: text/html; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n<html><body><table>\r\n"
        + rows
        + b"</table>\r\n</body></html>\r\n"
    )


def attachments_message(size: int) -> bytes:
    def attachment(n: int, raw: int) -> bytes:
        data = base64.encodebytes(os.urandom(raw)).replace(b"\n", b"\r\n")
        return (
            b'--mix\r\nContent-Type: application/pdf; name="a%d.pdf"\r\n'
            b'Content-Disposition: attachment; filename="a%d.pdf"\r\n'
            b"Content-Transfer-Encoding: base64\r\n\r\n" % (n, n)
        ) + data

    body = (
        b'--mix\r\nContent-Type: multipart/alternative; boundary="alt"\r\n\r\n'
        b"--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nReport attached.\r\n"
        b"--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        b"<html><body><p>Report attached.</p></body></html>\r\n--alt--\r\n"
    )
    each = size * 3 // 4 // 3
    parts = b"".join(attachment(n, each) for n in range(3))
    return (
        HEAD
        + b'Content-Type: multipart/mixed; boundary="mix"\r\n\r\n'
        + body
        + parts
        + b"--mix--\r\n"
    )


def splice_floor(content: bytes) -> bytes:
    at = content.rfind(b"</body>")
    return b"".join([content[:at], NOTICE.html("\r\n").encode(), content[at:]])


def email_roundtrip(content: bytes) -> bytes:
    return email.message_from_bytes(content, policy=email.policy.SMTP).as_bytes()


def ours(content: bytes) -> bytes:
    return add_notice(content, NOTICE).content


def seconds(fn: Callable[[bytes], bytes], content: bytes, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn(content)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak(fn: Callable[[bytes], bytes], content: bytes) -> int:
    tracemalloc.start()
    fn(content)
    _, top = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return top


def compare(label: str, content: bytes, runs: int) -> None:
    print(f"\n{label}: {len(content) / 1e6:.2f} MB")
    base = seconds(splice_floor, content, runs)
    rows = [("splice floor", splice_floor), ("email parse+write", email_roundtrip), ("ours", ours)]
    for name, fn in rows:
        t = base if fn is splice_floor else seconds(fn, content, runs)
        mem = peak(fn, content)
        print(
            f"  {name:18} {t * 1e3:9.2f} ms  x{t / base:7.1f}   peak {mem / 1e6:8.2f} MB"
            f"  ({mem / len(content):.2f} x message)"
        )


def scaling() -> None:
    print("\nMIME-3 inputs, time at n and 2n (ratio near 2 means linear):")
    cases: dict[str, Callable[[int], bytes]] = {
        "addresses in To:": lambda n: (
            b"To: " + b", ".join(b"user%d@council.example" % i for i in range(n)) + b"\r\n"
        ),
        "encoded-words": lambda n: (
            b"Subject: " + b" ".join([b"=?UTF-8?Q?caf=C3=A9?="] * n) + b"\r\n"
        ),
        "Content-Type params": lambda n: (
            b"X-Pad: 1\r\nContent-Type: text/plain"
            + b"".join(b';\r\n p%d="v;v"' % i for i in range(n))
            + b"\r\n"
        ),
        "header chars, no spaces": lambda n: b"X-Long: " + b"a" * (n * 10) + b"\r\n",
        # The HTML judge (gateway/mail/html_flow.py) follows every tag of an HTML part.
        "HTML elements": lambda n: (
            b"Content-Type: text/html\r\n\r\n<html><body>"
            + b"<p>x<b>y</b></p>" * n
            + b"</body></html>"
        ),
        "HTML left open": lambda n: (
            b"Content-Type: text/html\r\n\r\n<html><body>" + b"<span>" * n + b"</i>" * n
        ),
    }
    for name, make in cases.items():
        t = []
        for n in (10_000, 20_000):
            content = b"From: alice@c4f.example\r\n" + make(n)
            content += b"\r\n" if b"\r\n\r\n" in content else b"\r\nText\r\n"
            t.append(seconds(ours, content, 5))
        print(
            f"  {name:24} n: {t[0] * 1e3:7.2f} ms   2n: {t[1] * 1e3:7.2f} ms   "
            f"ratio {t[1] / t[0]:.2f}"
        )


def main() -> None:
    compare("100 KB HTML message", html_message(100_000), runs=50)
    compare("20 MB message with attachments", attachments_message(20_000_000), runs=5)
    scaling()


if __name__ == "__main__":
    main()
