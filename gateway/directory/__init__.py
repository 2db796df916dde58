"""Who and where: staff accounts, the approved-contact list (and its CSV form), address rules,
lookalike detection and the MX sweep.

May import register (for the admin trail), mail and the base modules.
"""
