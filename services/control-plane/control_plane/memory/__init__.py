"""Tenant documents (scoped memory): uploads and their files (`api`, `files`, `store`), PDF text in a limited child
process (`pdf_text`, `pdf_child`), review of held documents (`review`), their audit events (`audit`) and settings."""
