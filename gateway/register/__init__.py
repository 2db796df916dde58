"""The disclosure register: the hash-chained, HMAC-keyed ledger, its codec and fields, the
views and formats that read it, verification, checkpoints and purging.

May import mail and the base modules. Callers that purge call :mod:`gateway.register.purge`;
the ledger itself does not know about purging.
"""
