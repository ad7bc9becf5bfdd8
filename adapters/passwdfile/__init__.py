"""Account provisioning into Dovecot passwd-files (the dev stack's account store)."""

from adapters.passwdfile.provisioner import PasswdFileProvisioner

__all__ = ["PasswdFileProvisioner"]
