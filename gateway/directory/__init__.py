"""Who and where: staff accounts and their password hashes, the approved contacts (one
contact and its rules, the list, its CSV file and import), address rules, lookalike
detection and the MX sweep.

May import register (for the admin trail), mail and the base modules.
"""
