"""Benchmarks that print figures: ``python -m bench`` runs them all, ``python -m bench NAME`` one of them.

They are not tests (pytest never collects them) and write no files: every figure goes to standard output.
All traffic stays on 127.0.0.1 and every run is bounded in request count and time.
"""
