"""A small authoritative DNS server for tests: real UDP on 127.0.0.1, port 0.

It answers MX queries from a dict built with dnspython (any name it does not know:
NXDOMAIN) and remembers every question, so a test that points ``[dns] nameservers`` at it
can check which names the gateway looked up, without the machine's own DNS.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset


@dataclass
class DnsServer:
    zones: dict[str, list[str]]  # name -> MX records as text ("10 mx.example.")
    port: int = 0
    asked: list[tuple[str, str]] = field(default_factory=list)  # (name, type) in order

    @property
    def nameserver(self) -> str:
        """The ``[dns] nameservers`` entry that reaches it."""
        return f"127.0.0.1:{self.port}"

    def answer(self, wire: bytes) -> bytes:
        query = dns.message.from_wire(wire)
        response = dns.message.make_response(query)
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        self.asked.append((name, dns.rdatatype.to_text(question.rdtype)))
        if name not in self.zones:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif question.rdtype == dns.rdatatype.MX and self.zones[name]:
            response.answer.append(
                dns.rrset.from_text_list(
                    question.name, 300, dns.rdataclass.IN, dns.rdatatype.MX, self.zones[name]
                )
            )
        return response.to_wire()  # a known name without such records: NOERROR, no answer


@contextlib.contextmanager
def dns_server(zones: dict[str, list[str]]) -> Iterator[DnsServer]:
    """Serve ``zones`` on a UDP socket until the block ends."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.1)
    server = DnsServer(zones, sock.getsockname()[1])
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                wire, peer = sock.recvfrom(4096)
            except TimeoutError:
                continue
            sock.sendto(server.answer(wire), peer)

    thread = threading.Thread(target=serve, name="test-dns", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        stop.set()
        thread.join(5)
        sock.close()
