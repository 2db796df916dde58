"""c4f-gateway: a secure outbound email gateway for child contact centres."""

__version__ = "0.1.0"
