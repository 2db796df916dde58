"""Messages held for a line manager's approval: the service that decides (approve, refuse,
withdraw, expire, remind) and the notices it sends; the held-message type they share.

May import queue, directory, register, mail and the base modules; only smtp, server, cli and
web import it.
"""
