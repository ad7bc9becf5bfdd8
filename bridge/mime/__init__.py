"""MIME: presenting stored messages as XIMSS XML and composing messages from it."""
