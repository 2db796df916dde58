"""The review console: a small server-rendered web site for line managers and admins.

Line managers review the disclosure register and record follow-ups; admins also keep the
approved contacts, the queue and the console accounts. Every page is plain HTML that
works with JavaScript off. Everything the console does goes through the same functions
the ``c4f-gateway`` command calls (:mod:`gateway.register`, :mod:`gateway.contacts`,
:mod:`gateway.spool`, :mod:`gateway.staff`), and every sign-in and change is written to
the register's admin trail.
"""
