"""The submission side: the hardened aiosmtpd listener (TLS, AUTH, limits) and the handler
that turns each SMTP phase into a pipeline call and spools what passes.

May import every wing below it: filters (through the pipeline), holds, queue, directory,
register, mail and the base modules. Nothing below imports this wing.
"""
