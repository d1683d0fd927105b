"""Keys, principals and their audit: the admin API (`api`, `models`), people and service accounts (`principals`), the
key audit events (`key_audit`)."""
