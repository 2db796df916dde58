"""The review console: a small server-rendered web site for line managers and admins.

Line managers review the disclosure register, record follow-ups and approve or refuse
their reports' held messages; admins also keep the approved contacts, the queue and the
console accounts; staff sign in only to see and withdraw their own held messages. Every
page is plain HTML that works with JavaScript off. Everything the console does goes
through the same functions the ``c4f-gateway`` command calls (:mod:`gateway.register.ledger`,
:mod:`gateway.directory.contacts`, :mod:`gateway.queue.spool`, :mod:`gateway.holds.service`,
:mod:`gateway.directory.staff`),
and every sign-in and change is written to the register (its admin trail, or the held
message's own entry).
"""
