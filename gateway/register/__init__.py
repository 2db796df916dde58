"""The disclosure register: the hash-chained, HMAC-keyed ledger (``event_entries``: what
it keeps of each event the engine records; ``entry_rows``: its rows read back), its codec
and fields, the records people read (``record``: an entry seen through its follow-ups;
``fold``: entries folded into records; ``criteria``: which records a list asks for), the
formats that show them (``formats``: shared words and the list tables; ``export``: CSV
and JSON; ``record_text``: one record and the family report; ``client_copy``),
verification, checkpoints and purging.

May import mail and the base modules. Callers that purge call :mod:`gateway.register.purge`;
the ledger itself does not know about purging.
"""
