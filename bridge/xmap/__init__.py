"""XMAP 0.90 front end, sans-IO: framing (framing.py), the hardened document reader (document.py),
typed commands (commands.py, codec.py), flags (flags.py), responses (responses.py) and the error
table (errors.py). The protocol text is specs/xmap-0.90.txt; DESIGN.md section 6 fills its gaps.
"""
