"""The queue: the sealed spool and its states, the delivery worker, the transports that take a
message to the smarthost over verified TLS (or into a Maildir), and bounces (DSN).

May import directory, register, mail and the base modules; holds and smtp sit above it.
"""
