"""The bytes of a message: header splitting, the MIME walker, byte-exact edits, the mandatory
notice and the gateway's own notices.

Imports only the base modules (errors, settings); every other wing may import it.
"""
