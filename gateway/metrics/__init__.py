"""The Prometheus endpoint of ``serve`` (``[metrics] listen``): counts, never personal data.

Where each number comes from:

- accepted, refused, per-recipient delivery outcomes, hold steps and the delivery latency
  (acceptance to the upstream's 250): the disclosure register, read forward at each scrape
  from the entry that was newest when ``serve`` started. Only committed entries are seen,
  each once, whichever process wrote them (a ``held approve`` on the command line too), so
  the counters agree with the register by construction and a rolled-back acceptance is
  never counted;
- queue depth by state, the held count and the oldest ages: the queue table, at scrape time;
- failed SMTP logins: the listener's login throttle (:class:`CountingThrottle`);
- the register's integrity: a ``register verify`` run every ``[metrics] verify_interval``
  (:meth:`Metrics.verify`, a job of ``serve``), and the time of the newest signed checkpoint.

Labels carry only the gateway's own fixed words: queue states, outcomes, hold steps, reply
codes and a refusal's reference when it names a rule (``DISC-TAG``, ``NOTICE-SIGNED``).
A per-refusal trace code (``R-1A2B``) is counted as ``per-refusal``; addresses, logins,
subjects and queue IDs are never labels. Scrapes are answered by prometheus_client's HTTP
server in its own threads; the database is read through the gateway's store, on its read
connection (:meth:`gateway.store.Store.query`: a scrape never waits behind a commit).

What one scrape reports is :mod:`.scrape`; the HTTP endpoint and the verify job are
:mod:`.endpoint`.
"""

from gateway.metrics.endpoint import CountingThrottle, Metrics

__all__ = ["CountingThrottle", "Metrics"]
