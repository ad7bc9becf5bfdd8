"""Message submission over SMTP (RFC 6409): the user's credentials, one transaction a message."""
