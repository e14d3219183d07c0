"""Benchmarks that print figures: ``python -m bench`` runs them all, ``python -m bench NAME`` one of them.

They are not tests (pytest never collects them). Each prints its tables and writes them with its figures and the
machine to ``bench/results/<name>.json``. All traffic stays on 127.0.0.1 and every run is bounded in count and time.
"""
