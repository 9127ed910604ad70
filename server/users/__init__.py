"""Users, roles and sessions, the administrator token, the audit log: who may do what."""
