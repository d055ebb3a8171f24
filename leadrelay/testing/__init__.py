"""Test support shared by the test suite and the bench (as ``django.test`` is Django's).

Fixture servers and processes (a throwaway Dovecot, the sandbox in a process of
its own), the partners' fixtures and the mails made from them, and ledger
seeding. It works from a checkout: the partners' fixtures are read from
``adapters/*/fixtures``, which are not installed.

Product code never imports it (an import-linter contract says so); tests and
bench do. Nothing here depends on pytest: the fixtures live in the tests'
conftest.py files and use these helpers.
"""
